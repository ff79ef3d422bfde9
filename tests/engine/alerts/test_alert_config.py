"""`[alerts]` in bond.toml: rules as written, the webhook URL kept secret, mistakes refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bond import config
from bond.cli import main
from bond.config import AlertRule
from bond.errors import ConfigError

TOML = """
[alerts]
webhook_url = "https://discord.example/api/webhooks/1/s3cret"

[[alerts.rules]]
name = "big checkout"
kind = "identified"
threshold = 500

[[alerts.rules]]
name = "target accounts"
kind = "returned"
emails = [" Boss@Acme.example "]
domains = ["@acme.example"]
away_s = 86400

[[alerts.rules]]
name = "large order"
kind = "event"
event = "Order Completed"
where = ["value >= 500", "currency == 'EUR'"]
cooldown_s = 0
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> config.Config:
    path = tmp_path / "bond.toml"
    path.write_text(text)
    return config.load(path, env=env or {})


def test_rules_are_read_and_normalised(tmp_path: Path) -> None:
    alerts = load(tmp_path, TOML).alerts
    assert alerts.webhook_url == "https://discord.example/api/webhooks/1/s3cret"
    assert alerts.rules == (
        AlertRule(name="big checkout", kind="identified", threshold=500.0),
        AlertRule(
            name="target accounts",
            kind="returned",
            emails=("boss@acme.example",),
            domains=("acme.example",),
            away_s=86400,
        ),
        AlertRule(
            name="large order",
            kind="event",
            event="Order Completed",
            where=("value >= 500", "currency == 'EUR'"),
            cooldown_s=0,
        ),
    )


def test_the_webhook_url_comes_from_the_environment_and_never_shows_in_repr(
    tmp_path: Path,
) -> None:
    loaded = load(tmp_path, "", env={"BOND_DISCORD_WEBHOOK_URL": "https://d.example/hook/s3cret"})
    assert loaded.alerts.webhook_url == "https://d.example/hook/s3cret"
    assert "s3cret" not in repr(loaded)


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        ('name = "x"\nkind = "sometimes"', "kind must be identified, returned or event"),
        ('name = "x"\nkind = "event"', "needs 'event'"),
        ('name = "x"\nkind = "returned"', "needs emails, domains or min_lifetime_value"),
        ('name = "x"\nkind = "identified"\nthreshhold = 5', "unknown setting(s) threshhold"),
        ('name = "x"\nkind = "identified"\nthreshold = true', "threshold must be"),
        ('name = "x"\nkind = "identified"\nwhere = "value > 1"', "where must be a list"),
    ],
)
def test_mistakes_in_a_rule_are_refused(tmp_path: Path, rule: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        load(tmp_path, f"[[alerts.rules]]\n{rule}\n")


def test_a_bad_webhook_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, '[alerts]\nwebhook_url = "discord s3cret"\n')
    assert "s3cret" not in str(raised.value)


def test_a_rule_takes_its_own_currency_or_the_alerts_one(tmp_path: Path) -> None:
    alerts = load(
        tmp_path,
        '[alerts]\ncurrency = "eur"\n'
        '[[alerts.rules]]\nname = "a"\nkind = "identified"\n'
        '[[alerts.rules]]\nname = "b"\nkind = "identified"\ncurrency = "USD"\n',
    ).alerts
    assert alerts.currency == "EUR"
    assert [(rule.name, rule.currency) for rule in alerts.rules] == [("a", "EUR"), ("b", "USD")]
    [rule] = load(tmp_path, '[[alerts.rules]]\nname = "c"\nkind = "identified"\n').alerts.rules
    assert rule.currency is None  # each currency on its own


@pytest.mark.parametrize("code", ['"US$"', '"EURO"', '""', '"€"', '" EUR"', "978"])
def test_a_currency_that_is_not_a_code_stops_the_worker_naming_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str
) -> None:
    path = tmp_path / "bond.toml"
    path.write_text(
        f'[[alerts.rules]]\nname = "big checkout"\nkind = "identified"\ncurrency = {code}\n'
    )
    assert main(["--config", str(path), "--data-dir", str(tmp_path / "bond-data"), "worker"]) == 1
    assert capsys.readouterr().err.startswith(
        "bond: alert rule 'big checkout': currency must be a three-letter ISO 4217 currency code"
    )
    with pytest.raises(ConfigError, match=re.escape("alerts.currency must be a three-letter")):
        load(tmp_path, f"[alerts]\ncurrency = {code}\n")
