"""An erasure takes what the log holds of the person beyond the worker's offset, however many
steps away from the identifier asked for: the log is applied up to its head before the plan, so
the identity graph's own rules decide, and what arrives after the plan is the suppression
list's. Through the real collector, `bond erase` and worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.privacy.erase import FAULT_ENV
from tests.engine.privacy.privacy_support import (
    ANN_EMAIL,
    ANN_NEEDLES,
    ANN_USER,
    BOB_EMAIL,
    BOB_USER,
    Stack,
    event,
    found_in_tables,
    post,
    run_cli,
    stack,
    two_people,
)

WORK_EMAIL = "ann.at.work@example.org"
NEW_USER = "ann-new-4471"
FAMILY_EMAIL = "family.mail@example.net"
# Her browsers the worker has not seen, each tied to her only through another one's identify.
WORK_PC, HOME_TV, TABLET, CAR = "ann-work-pc-1", "ann-home-tv-2", "ann-tablet-3", "ann-car-4"
Message = dict[str, Any]
HERS = (WORK_EMAIL, NEW_USER, WORK_PC, HOME_TV, TABLET, CAR, "Seen on the TV", "Seen in the car")


def identify(n: int, minute: int, browser: str, email: str | None = None, **fields: Any) -> Message:
    traits = {"traits": {"email": email}} if email else {}
    return event(n, "identify", minute, anonymousId=browser, **traits, **fields)


def applied_then_stopped(running: Stack) -> None:
    """Her and Bob's traffic applied, then the worker stopped (a deploy, a crash)."""
    assert post(running.collector, two_people()).status_code == 200
    running.caught_up()
    running.worker.stop()


def erase_her_while_stopped(running: Stack, waiting: list[Message]) -> None:
    """`waiting` is collected while no worker runs; `bond erase` applies it before its plan,
    and a new worker then applies what is left."""
    assert post(running.collector, waiting).status_code == 200
    erased = run_cli(running.data_dir, "erase", ANN_EMAIL, env=running.env)
    assert erased.returncode == 0, erased.stderr
    running.restart_worker()
    running.caught_up()


def test_erasure_follows_identifiers_the_unapplied_events_give_her(data_dir: Path) -> None:
    with stack(data_dir) as running:
        applied_then_stopped(running)
        waiting = [
            # At work she logs in with her user id and her work email...
            event(40, "page", 100, anonymousId=WORK_PC, name="Work"),
            identify(41, 101, WORK_PC, userId=ANN_USER, email=WORK_EMAIL),
            # ...which is all her TV ever names.
            event(42, "page", 102, anonymousId=HOME_TV, name="Seen on the TV"),
            identify(43, 103, HOME_TV, email=WORK_EMAIL),
            # On a tablet she signs up again with her email, and gets a new user id...
            identify(44, 104, TABLET, userId=NEW_USER, email=ANN_EMAIL),
            # ...which is all her car names.
            event(45, "page", 105, anonymousId=CAR, name="Seen in the car"),
            identify(46, 106, CAR, userId=NEW_USER),
            # Bob, on his own, is nothing of hers; nor is the family email he gives first.
            event(47, "page", 107, anonymousId="bob-phone-77aa", name="Bob again"),
            identify(48, 108, "bob-phone-77aa", userId=BOB_USER, email=FAMILY_EMAIL),
            identify(49, 109, WORK_PC, userId=ANN_USER, email=FAMILY_EMAIL),
        ]
        bob = running.person(email=BOB_EMAIL)
        assert bob is not None
        bob_before = running.timeline(bob["id"])

        erase_her_while_stopped(running, waiting)

        assert found_in_tables(data_dir, (*ANN_NEEDLES, *HERS)) == []
        for browser in (WORK_PC, HOME_TV, TABLET, CAR):
            assert running.person(anonymous_id=browser) is None, browser
        assert running.person(email=WORK_EMAIL) is None
        assert running.person(user_id=NEW_USER) is None
        # His two unapplied events on his phone are his, applied after the erasure.
        assert running.person(email=FAMILY_EMAIL) == running.person(email=BOB_EMAIL)
        bob_after = running.timeline(bob["id"])
        assert len(bob_after) == len(bob_before) + 2
        assert all(e in bob_after for e in bob_before)


def test_erasure_takes_a_browser_a_server_side_alias_gave_her(data_dir: Path) -> None:
    laptop = "ann-old-laptop-5b1"
    with stack(data_dir) as running:
        applied_then_stopped(running)
        waiting = [
            event(40, "page", 100, anonymousId=laptop, name="Seen on the old laptop"),
            # Her server links the laptop's anonymous id to her account: the event itself has
            # no anonymousId, only the previousId.
            event(41, "alias", 101, previousId=laptop, userId=ANN_USER),
        ]
        erase_her_while_stopped(running, waiting)

        assert found_in_tables(data_dir, (*ANN_NEEDLES, laptop, "old laptop")) == []
        assert running.person(anonymous_id=laptop) is None


def test_a_browser_whose_identify_came_after_the_plan_goes_with_its_page_views(
    data_dir: Path,
) -> None:
    tablet = "ann-new-tablet-9c"
    with stack(data_dir) as running:
        applied_then_stopped(running)
        # `bond erase` stops right after recording its plan; the collector, which has not seen
        # the suppression list yet, accepts her new tablet's browsing and its identify.
        crashed = run_cli(data_dir, "erase", ANN_EMAIL, env={**running.env, FAULT_ENV: "planned"})
        assert crashed.returncode == 70, crashed.stderr
        late = [
            event(50, "page", 200, anonymousId=tablet, name="Tablet wishlist"),
            event(51, "identify", 201, anonymousId=tablet, traits={"email": ANN_EMAIL}),
            event(52, "track", 202, anonymousId=tablet, event="Tablet product viewed"),
        ]
        assert post(running.collector, late).status_code == 200
        bob_before = running.timeline(running.person(email=BOB_EMAIL)["id"])  # type: ignore[index]

        running.restart_worker()  # resumes the erasure, then applies what came after
        running.caught_up()

        assert found_in_tables(data_dir, (*ANN_NEEDLES, tablet, "Tablet")) == []
        assert running.person(anonymous_id=tablet) is None
        assert running.timeline(running.person(email=BOB_EMAIL)["id"]) == bob_before  # type: ignore[index]
        # What the tablet sends later is dropped at the door.
        post(running.collector, [event(53, "page", 300, anonymousId=tablet, name="Tablet again")])
        running.caught_up()
        assert running.person(anonymous_id=tablet) is None
