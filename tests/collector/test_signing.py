"""Signed identities at a running `bond serve`, over real HTTP, read back from events.db."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bond.config import load
from bond.errors import ConfigError
from conftest import ROOT, WRITE_KEY, Collector
from tests.signing_support import sign as signature_of
from tests.signing_support import sources

SECRET = "shop-signing-secret"
OPTIONAL_SECRET = "optional-signing-secret"
SIGNED = "signed-key"
OPTIONAL = "optional-key"
SOURCES = f"""{sources(SIGNED, SECRET)}
[[sources]]
name = "optional"
write_key = "{OPTIONAL}"
signing_secret = "{OPTIONAL_SECRET}"
"""


def sign(value: str, secret: str = SECRET) -> str:
    return signature_of(value, secret)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    root = tmp_path_factory.mktemp("signing")
    (root / "bond.toml").write_text(SOURCES)
    collector = Collector(root / "data", env={"BOND_CONFIG": str(root / "bond.toml")}).start()
    yield collector
    collector.stop()


def send(server: Collector, key: str, *messages: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/batch",
        content=orjson.dumps({"writeKey": key, "batch": list(messages)}),
        headers={"Content-Type": "text/plain"},
    )


def message(kind: str = "identify", signature: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "messageId": str(uuid.uuid4()),
        "anonymousId": "anon-1",
        **fields,
    }
    if signature is not None:
        body.setdefault("context", {})["bond"] = {"signature": signature}
    return body


def stored(server: Collector, sent: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The stored event's user_id column and body (with a context, even an empty one)."""
    row = _row(server, sent)
    assert row is not None, f"{sent['messageId']} was not stored"
    body = orjson.loads(row[1])
    return row[0], {"context": {}, **body}


def not_stored(server: Collector, sent: dict[str, Any]) -> bool:
    return _row(server, sent) is None


def _row(server: Collector, sent: dict[str, Any]) -> tuple[str | None, bytes] | None:
    with closing(sqlite3.connect(server.data_dir / "events.db")) as conn:
        row: tuple[str | None, bytes] | None = conn.execute(
            "SELECT user_id, body FROM events WHERE message_id = ?", (sent["messageId"],)
        ).fetchone()
    return row


def rejected_rows(server: Collector, sent: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    with closing(sqlite3.connect(server.data_dir / "events.db")) as conn:
        rows = conn.execute("SELECT source, reason, body FROM rejected").fetchall()
    found = [(source, reason, orjson.loads(body)) for source, reason, body in rows]
    return [row for row in found if row[2].get("messageId") == sent["messageId"]]


def metric(server: Collector, series: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0


def test_a_signed_identify_is_kept_with_the_collectors_marker_and_not_its_signature(
    server: Collector,
) -> None:
    signature = sign("user-1")
    sent = message(userId="user-1", traits={"plan": "pro"}, signature=signature)
    before = metric(server, "bond_identities_verified_total")

    response = send(server, SIGNED, sent)

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "rejected": []}
    user_id, body = stored(server, sent)
    assert user_id == "user-1" and body["userId"] == "user-1"
    assert body["context"]["bond"] == {"verified": "user_id"}
    assert signature not in orjson.dumps(body).decode()
    assert metric(server, "bond_identities_verified_total") == before + 1


def test_an_email_is_signed_in_its_trimmed_lowercased_form(server: Collector) -> None:
    sent = message(traits={"email": " Ada@Example.COM "}, signature=sign("ada@example.com"))

    response = send(server, SIGNED, sent)

    assert "identity_rejected" not in response.json()
    _, body = stored(server, sent)
    assert body["traits"] == {"email": " Ada@Example.COM "}
    assert body["context"]["bond"] == {"verified": "email"}


@pytest.mark.parametrize(
    ("signature", "code", "says"),
    [
        (None, "identity_unsigned", "carries no signature"),
        (sign("someone-else"), "identity_bad_signature", "matches neither"),
        (sign("user-2", secret="not-the-secret"), "identity_bad_signature", "matches neither"),
        ("not hex at all", "identity_bad_signature", "matches neither"),
    ],
)
def test_an_unvouched_identify_is_kept_anonymous_and_its_refusal_reported(
    server: Collector, signature: str | None, code: str, says: str
) -> None:
    sent = message(
        userId="user-2", traits={"email": "victim@example.com", "plan": "pro"}, signature=signature
    )
    series = f'bond_identities_rejected_total{{reason="{code}"}}'
    before = metric(server, series)

    response = send(server, SIGNED, sent)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1 and answer["rejected"] == []
    [refusal] = answer["identity_rejected"]
    assert refusal["index"] == 0 and says in refusal["reason"]
    assert "kept as an anonymous event" in refusal["reason"]
    user_id, body = stored(server, sent)
    assert user_id is None and "userId" not in body
    assert body["traits"] == {"plan": "pro"} and body["anonymousId"] == "anon-1"
    assert "bond" not in body["context"]
    # The rejected store keeps what was claimed, for whoever debugs the site, but no signature.
    [(source, reason, claimed)] = rejected_rows(server, sent)
    assert (source, reason) == ("signed", refusal["reason"])
    assert claimed["userId"] == "user-2"
    assert claimed["traits"]["email"] == "victim@example.com"
    assert "bond" not in claimed.get("context", {})
    assert metric(server, series) == before + 1


def test_an_unvouched_identify_sent_again_is_refused_once(server: Collector) -> None:
    # A retry, or the SDK re-sending what its unload beacon carried: stored once, refused once.
    sent = message(userId="user-9", traits={"plan": "pro"})

    answers = [send(server, SIGNED, sent).json() for _ in range(2)]

    assert [len(answer["identity_rejected"]) for answer in answers] == [1, 1]
    assert stored(server, sent)[0] is None
    assert len(rejected_rows(server, sent)) == 1


def test_every_event_with_a_user_id_needs_the_signature(server: Collector) -> None:
    unsigned = message("track", event="Order Completed", userId="user-3")
    signed = message("track", event="Order Completed", userId="user-3", signature=sign("user-3"))

    answer = send(server, SIGNED, unsigned, signed).json()

    assert answer["accepted"] == 2
    assert [r["index"] for r in answer["identity_rejected"]] == [0]
    user_id, body = stored(server, unsigned)
    assert user_id is None and "userId" not in body and body["event"] == "Order Completed"
    user_id, body = stored(server, signed)
    assert user_id == "user-3" and body["context"]["bond"] == {"verified": "user_id"}


def test_an_event_left_with_no_id_is_rejected_whole_with_the_reason(server: Collector) -> None:
    server_side = message("track", event="Renewed", userId="user-4")
    del server_side["anonymousId"]

    response = send(server, SIGNED, server_side)

    assert response.status_code == 400
    [rejection] = response.json()["rejected"]
    assert "carries no signature" in rejection["reason"]
    assert "no anonymousId" in rejection["reason"]
    assert not_stored(server, server_side)
    [(_, reason, claimed)] = rejected_rows(server, server_side)
    assert reason == rejection["reason"] and claimed["userId"] == "user-4"


def test_a_signature_vouches_for_the_one_identifier_it_signs(server: Collector) -> None:
    claims: dict[str, Any] = {"userId": "user-5", "traits": {"email": "five@example.com"}}
    over_user = message(signature=sign("user-5"), **claims)
    over_email = message(signature=sign("five@example.com"), **claims)

    answer = send(server, SIGNED, over_user, over_email).json()

    assert answer["accepted"] == 2
    first, second = answer["identity_rejected"]
    assert first["index"] == 0 and "traits.email was dropped" in first["reason"]
    assert second["index"] == 1 and "the userId was dropped" in second["reason"]
    user_id, body = stored(server, over_user)
    assert user_id == "user-5" and body["traits"] == {}
    assert body["context"]["bond"] == {"verified": "user_id"}
    user_id, body = stored(server, over_email)
    assert user_id is None and body["traits"] == {"email": "five@example.com"}
    assert body["context"]["bond"] == {"verified": "email"}


def test_an_alias_links_only_the_browsers_own_id_to_a_signed_user_id(server: Collector) -> None:
    own = message("alias", previousId="anon-1", userId="user-6", signature=sign("user-6"))
    other = message("alias", previousId="victim-user", userId="user-6", signature=sign("user-6"))
    unsigned = message("alias", previousId="anon-1", userId="user-6")

    response = send(server, SIGNED, own, other, unsigned)

    answer = response.json()
    assert answer["accepted"] == 1 and "identity_rejected" not in answer
    assert [r["index"] for r in answer["rejected"]] == [1, 2]
    assert "previousId equal to anonymousId" in answer["rejected"][0]["reason"]
    assert "carries no signature" in answer["rejected"][1]["reason"]
    user_id, body = stored(server, own)
    assert user_id == "user-6" and body["context"]["bond"] == {"verified": "user_id"}
    assert not_stored(server, other) and not_stored(server, unsigned)


def test_a_client_cannot_forge_the_verified_marker(server: Collector) -> None:
    forged = {"bond": {"verified": "user_id", "signature": "x" * 64}}
    in_open = message(userId="user-7", context=forged)
    in_signed = message(userId="user-7", context=forged)
    in_optional = message(userId="user-7", context=forged)

    send(server, WRITE_KEY, in_open)
    signed_answer = send(server, SIGNED, in_signed).json()
    optional_answer = send(server, OPTIONAL, in_optional).json()

    # Without signing the claim stands, unverified: no marker survives.
    user_id, body = stored(server, in_open)
    assert user_id == "user-7" and body["context"] == {}
    user_id, body = stored(server, in_signed)
    assert user_id is None and body["context"] == {}
    assert "matches neither" in signed_answer["identity_rejected"][0]["reason"]
    user_id, body = stored(server, in_optional)
    assert user_id == "user-7" and body["context"] == {}
    assert "identity_rejected" not in optional_answer


def test_a_source_with_optional_signing_marks_valid_signatures_and_keeps_the_rest(
    server: Collector,
) -> None:
    valid = message(userId="user-8", signature=sign("user-8", OPTIONAL_SECRET))
    wrong = message(userId="user-8", signature=sign("user-8"))
    unsigned = message(userId="user-8")

    answer = send(server, OPTIONAL, valid, wrong, unsigned).json()

    assert answer == {"success": True, "accepted": 3, "rejected": []}
    kept = [stored(server, m) for m in (valid, wrong, unsigned)]
    assert [user_id for user_id, _ in kept] == ["user-8"] * 3
    assert [body["context"] for _, body in kept] == [
        {"bond": {"verified": "user_id"}},
        {},
        {},
    ]


def test_a_batch_keeps_every_event_and_reports_refusals_by_index(server: Collector) -> None:
    batch = [
        message("page", name="Home"),
        message(traits={"email": "x@example.com"}),
        message("track", event="Viewed", userId="user-9", signature=sign("user-9")),
        message("track", event="Broken", anonymousId="undefined"),
    ]

    answer = send(server, SIGNED, *batch).json()

    assert answer["accepted"] == 3
    assert [r["index"] for r in answer["rejected"]] == [3]
    assert [r["index"] for r in answer["identity_rejected"]] == [1]


def test_neither_the_secret_nor_a_signature_reaches_the_logs_or_the_files(
    server: Collector,
) -> None:
    signature = sign("user-10")
    send(server, SIGNED, message(userId="user-10", signature=signature))
    send(server, SIGNED, message(userId="user-10", signature=signature[::-1]))
    send(server, OPTIONAL, message(userId="user-10", signature=signature))

    files = b"".join(path.read_bytes() for path in server.data_dir.glob("events.db*"))
    for secret in (SECRET, OPTIONAL_SECRET, signature, signature[::-1]):
        assert secret.encode() not in files
        assert secret not in server.log


def test_the_environment_makes_the_default_source_require_signatures(tmp_path: Path) -> None:
    env = {"BOND_SIGNING_SECRET": SECRET, "BOND_REQUIRE_SIGNED_IDENTIFY": "true"}
    collector = Collector(tmp_path / "data", env=env).start()
    try:
        unsigned = message(userId="user-11")
        signed = message(userId="user-11", signature=sign("user-11"))
        answer = send(collector, WRITE_KEY, unsigned, signed).json()
    finally:
        collector.stop()
    assert [r["index"] for r in answer["identity_rejected"]] == [0]
    assert stored(collector, unsigned)[0] is None
    assert stored(collector, signed)[0] == "user-11"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"BOND_REQUIRE_SIGNED_IDENTIFY": "true"}, "BOND_SIGNING_SECRET"),
        ({"BOND_REQUIRE_SIGNED_IDENTIFY": "sometimes"}, "must be true or false"),
    ],
)
def test_requiring_signatures_without_a_secret_fails_at_start(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    (tmp_path / "bond.toml").write_text("")
    with pytest.raises(ConfigError, match=says):
        load(tmp_path / "bond.toml", env=env)


@pytest.mark.parametrize(
    ("language", "command"),
    [("python", [sys.executable, "-"]), ("js", ["node", "--input-type=module", "-"])],
)
def test_the_readmes_signing_examples_compute_what_the_collector_checks(
    language: str, command: list[str]
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Signed identities") :]
    example = re.search(f"```{language}\n(.*?)```", section, re.S)
    assert example is not None, f"no {language} example under Signed identities"

    run = subprocess.run(
        command,
        input=example.group(1),
        env={**os.environ, "BOND_SIGNING_SECRET": SECRET},
        capture_output=True,
        text=True,
        check=True,
    )

    assert run.stdout.split() == [sign("cust-17"), sign("kim@example.com")]
