"""Each identity rule as a scenario, through a real event log, worker and state.db."""

from __future__ import annotations

from pathlib import Path

from tests.engine.harness import Engine


def seqs(events: list[dict[str, object]]) -> list[object]:
    return [e["properties"]["at"] for e in events if e["type"] == "track"]  # type: ignore[index]


def test_identify_stitches_the_anonymous_history(engine: Engine) -> None:
    for ts in (100, 200, 300):
        engine.track("anon-1", ts)
    engine.identify("anon-1", 400, user="u1", email="Ada@Example.com")
    engine.run()

    person = engine.person(email="ada@example.com")
    assert person["identified"]
    assert person["user_ids"] == ["u1"] and person["anonymous_ids"] == ["anon-1"]
    assert person["event_count"] == 4 and person["first_seen"] == 100
    assert seqs(engine.timeline(user_id="u1")) == [300, 200, 100]
    [change] = engine.changes()
    assert change["kind"] == "identified" and change["anonymous_events_stitched"] == 3


def test_identify_with_history_in_a_later_batch_than_the_anonymous_events(engine: Engine) -> None:
    engine.track("anon-1", 100)
    engine.run()
    engine.identify("anon-1", 200, user="u1")
    engine.run()
    assert engine.person(user_id="u1")["event_count"] == 2


def test_same_user_on_two_devices_is_one_person_with_both_histories(engine: Engine) -> None:
    engine.track("laptop", 100)
    engine.identify("laptop", 200, user="u1", email="ada@example.com")
    engine.track("phone", 300)
    engine.track("phone", 310)
    engine.identify("phone", 400, email="ADA@example.com")
    engine.track("tablet", 500)
    engine.identify("tablet", 600, user="u1")
    engine.run()

    person = engine.person(user_id="u1")
    assert person["anonymous_ids"] == ["laptop", "phone", "tablet"]
    assert person["event_count"] == 7
    assert seqs(engine.timeline(email="ada@example.com")) == [500, 310, 300, 100]
    kinds = [(c["kind"], c["anonymous_events_stitched"]) for c in engine.changes()]
    assert kinds == [("identified", 1), ("merged", 2), ("merged", 1)]


def test_alias_links_the_previous_anonymous_id(engine: Engine) -> None:
    engine.track("old-browser", 100)
    engine.track("old-browser", 110)
    engine.alias("new-browser", "old-browser", "u1", 200)
    engine.run()

    person = engine.person(user_id="u1")
    assert set(person["anonymous_ids"]) == {"old-browser", "new-browser"}
    assert seqs(engine.timeline(user_id="u1")) == [110, 100]
    assert engine.reader.find(anonymous_id="old-browser") == person["id"]


def test_alias_renames_a_user_id(engine: Engine) -> None:
    engine.identify("anon-1", 100, user="temp-123")
    engine.alias("anon-1", "temp-123", "u1", 200)
    engine.track("anon-1", 300)
    engine.run()

    person = engine.person(user_id="u1")
    assert person["user_ids"] == ["temp-123", "u1"]
    assert person["event_count"] == 3
    assert not [c for c in engine.changes() if c["kind"] == "refused"]


def test_alias_never_merges_two_identified_persons(engine: Engine) -> None:
    engine.identify("a", 100, user="u1")
    engine.identify("b", 100, user="u2")
    engine.alias(None, "u1", "u2", 200)
    engine.run()

    assert engine.person(user_id="u1")["id"] != engine.person(user_id="u2")["id"]
    refusal = engine.changes()[-1]
    assert refusal["kind"] == "refused" and refusal["reason"] == "identified_persons_not_merged"


def test_shared_computer_without_reset_keeps_histories_apart(engine: Engine) -> None:
    engine.track("family-pc", 100)
    engine.identify("family-pc", 200, user="alice")
    engine.track("family-pc", 300)
    engine.identify("family-pc", 400, user="bob")
    engine.track("family-pc", 500)
    engine.run()

    alice, bob = engine.person(user_id="alice"), engine.person(user_id="bob")
    assert alice["id"] != bob["id"]
    assert seqs(engine.timeline(user_id="alice")) == [300, 100]
    assert seqs(engine.timeline(user_id="bob")) == [500]
    assert alice["event_count"] + bob["event_count"] == 5
    assert engine.reader.find(anonymous_id="family-pc") == bob["id"]
    refusal = engine.changes()[-1]
    assert (refusal["kind"], refusal["reason"]) == ("refused", "shared_browser")
    assert (refusal["person_id"], refusal["other_person_id"]) == (bob["id"], alice["id"])
    # Bob is new with this identify: he was first seen then, not never.
    assert refusal["first_seen"] == 400


def test_shared_computer_events_applied_before_the_second_identify_move_to_it(
    engine: Engine,
) -> None:
    # Bob's page view (ts 500) reached the log before his identify (ts 400).
    engine.identify("family-pc", 200, user="alice")
    engine.track("family-pc", 500)
    engine.run()
    engine.identify("family-pc", 400, user="bob")
    engine.run()

    assert seqs(engine.timeline(user_id="bob")) == [500]
    assert engine.person(user_id="bob")["event_count"] == 2
    assert engine.person(user_id="alice")["event_count"] == 1


def test_returning_to_the_first_person_on_a_shared_computer(engine: Engine) -> None:
    engine.identify("pc", 100, user="alice")
    engine.identify("pc", 200, user="bob")
    engine.identify("pc", 300, user="alice")
    engine.track("pc", 350)
    engine.run()
    assert seqs(engine.timeline(user_id="alice")) == [350]
    assert engine.person(user_id="alice")["event_count"] == 3
    assert engine.person(user_id="bob")["event_count"] == 1


def test_a_late_login_on_a_shared_computer_takes_only_its_own_stretch(engine: Engine) -> None:
    engine.identify("pc", 10, user="alice")
    engine.identify("pc", 100, user="bob")
    engine.track("pc", 110, user="bob")
    engine.track("pc", 130, user="bob")
    engine.run()
    # Alice's tab, left open, sends an event from before Bob's last one.
    engine.track("pc", 120, user="alice")
    engine.track("pc", 125)
    engine.run()

    assert seqs(engine.timeline(user_id="bob")) == [130, 110]
    assert seqs(engine.timeline(user_id="alice")) == [125, 120]
    alice, bob = engine.person(user_id="alice"), engine.person(user_id="bob")
    assert (alice["event_count"], alice["first_seen"], alice["last_seen"]) == (3, 10, 125)
    assert (bob["event_count"], bob["first_seen"], bob["last_seen"]) == (3, 100, 130)
    engine.track("pc", 150, user="bob")
    engine.run()
    assert seqs(engine.timeline(user_id="bob")) == [150, 130, 110]


def test_a_login_that_arrives_late_keeps_the_later_persons_events_theirs(
    engine: Engine,
) -> None:
    engine.track("pc", 60)
    engine.identify("pc", 100, user="alice")
    engine.track("pc", 110, user="alice")
    engine.run()
    # Bob logged in at 50, before Alice, but his identify reaches the log last.
    engine.identify("pc", 50, user="bob")
    engine.run()

    assert seqs(engine.timeline(user_id="alice")) == [110]
    assert seqs(engine.timeline(user_id="bob")) == [60]
    alice, bob = engine.person(user_id="alice"), engine.person(user_id="bob")
    assert (alice["event_count"], alice["first_seen"], alice["last_seen"]) == (2, 100, 110)
    assert (bob["event_count"], bob["first_seen"], bob["last_seen"]) == (2, 50, 60)


def test_late_anonymous_event_lands_on_the_right_person(engine: Engine) -> None:
    engine.identify("pc", 200, user="alice")
    engine.identify("pc", 400, user="bob")
    engine.run()
    # Delayed by the SDK's retry queue: happened before Bob logged in, arrives after.
    engine.track("pc", 300)
    engine.track("pc", 50)
    engine.track("pc", 450)
    engine.run()

    assert seqs(engine.timeline(user_id="alice")) == [300, 50]
    assert seqs(engine.timeline(user_id="bob")) == [450]


def test_late_anonymous_event_after_identify_joins_the_person(engine: Engine) -> None:
    engine.identify("anon-1", 200, user="u1")
    engine.run()
    engine.track("anon-1", 100)
    engine.run()
    assert seqs(engine.timeline(user_id="u1")) == [100]


def test_placeholder_ids_identify_nobody(engine: Engine) -> None:
    for i, email in enumerate(("undefined", "null", "", "not-an-email", "[object Object]")):
        engine.track(f"anon-{i}", 100)
        engine.identify(f"anon-{i}", 200, email=email)
    engine.run()

    assert not engine.changes()
    for i in range(5):
        assert not engine.person(anonymous_id=f"anon-{i}")["identified"]


def test_email_is_normalised(engine: Engine) -> None:
    engine.identify("a", 100, email="  Ada@Example.COM ")
    engine.identify("b", 200, email="ada@example.com")
    engine.run()
    assert engine.person(email="ADA@example.com")["anonymous_ids"] == ["a", "b"]
    assert engine.person(email="ada@example.com")["emails"] == ["ada@example.com"]


def test_user_id_and_email_of_different_persons_are_not_merged(engine: Engine) -> None:
    engine.identify("a", 100, user="u1", email="one@example.com")
    engine.identify("b", 100, user="u2", email="two@example.com")
    engine.identify("c", 200, user="u1", email="two@example.com")
    engine.run()

    assert engine.person(email="two@example.com")["user_ids"] == ["u2"]
    assert "c" in engine.person(user_id="u1")["anonymous_ids"]
    assert engine.changes()[-1]["reason"] == "email_of_other_person"


def test_user_ids_per_person_are_limited(data_dir: Path) -> None:
    engine = Engine(data_dir, max_user_ids=2)
    try:
        engine.identify("a", 100, user="u1", email="noisy@example.com")
        for i, user in enumerate(("u2", "u3", "u4"), start=1):
            engine.identify(f"b{i}", 100 + i, user=user, email="noisy@example.com")
        engine.run()
        assert engine.person(email="noisy@example.com")["user_ids"] == ["u1", "u2"]
        reasons = [c["reason"] for c in engine.changes() if c["kind"] == "refused"]
        assert reasons == ["max_user_ids", "max_user_ids"]
    finally:
        engine.close()


def test_server_side_events_by_user_id_join_the_person(engine: Engine) -> None:
    engine.track("anon-1", 100)
    engine.identify("anon-1", 200, user="u1")
    engine.track(None, 300, event="Order Completed", user="u1")
    engine.run()
    timeline = engine.timeline(user_id="u1")
    assert [e["event"] for e in timeline if e["type"] == "track"] == ["Order Completed", "Viewed"]
    assert timeline[0]["anonymous_id"] is None


def test_traits_last_write_by_time_wins_and_merged_ids_resolve(engine: Engine) -> None:
    engine.send("identify", anon="a", user="u1", ts=200, traits={"plan": "pro", "name": "Ada"})
    engine.send("identify", anon="b", ts=100, traits={"plan": "free", "city": "Paris"})
    engine.identify("b", 300, user="u1")
    engine.run()

    person = engine.person(user_id="u1")
    assert person["traits"] == {"plan": "pro", "name": "Ada", "city": "Paris"}
    merged = next(c for c in engine.changes() if c["kind"] == "merged")
    assert engine.reader.resolve(merged["other_person_id"]) == person["id"]
