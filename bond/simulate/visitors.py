"""Simulated visitors whose true identities are known, for the identity canary.

Each person has one to three browsers, browses anonymously, and some sign up, log in or check
out (identify with a user id and/or an email) on some browsers and not on others. Messages are
made the way bond.js makes them (sdk/src/index.js): after an identify or alias with a user id
the browser keeps that id and sends it with every later event, until `reset()`, which also
gives the browser a new anonymous id; clearing cookies does the same as reset. A site that logs
someone out without calling reset therefore sends the next person's events under the previous
person's user id: such events are marked `foreign`, because no identity graph can tell them
from the previous person's own.

Every person belongs to one scenario, each a case the identity graph claims to handle
(engine/README.md, "Identity rules"). One browse in twenty reaches Bond late (a retry queue,
a phone offline), up to two days after events that happened later.

Who really did each event is kept beside it (`Sent.person`) and never sent to Bond.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LATE_SHARE = 0.05
STORY_DAYS = 18
CONTEXT = {"library": {"name": "bond-simulate", "version": "1"}, "timezone": "UTC"}
PRODUCTS = ("lamp", "kettle", "boots", "novel", "headphones", "rug", "mug", "tent")


class Scenario(StrEnum):
    ORDINARY = "ordinary"
    LATE_IDENTIFY = "late_identify"
    COOKIE_CLEARED = "cookie_cleared"
    NEVER_IDENTIFIES = "never_identifies"
    SERVER_SIDE = "server_side"
    ALIAS = "alias"
    SHARED_RESET = "shared_computer_reset"
    SHARED_NO_RESET = "shared_computer_no_reset"
    # As without reset, but the second person's session (their login included) reaches Bond
    # after the first person came back and logged in again: a tab left open, a retry queue.
    SHARED_LATE_LOGIN = "shared_computer_no_reset_late_login"
    # As without reset, but the second person checks out as a guest (an email, no login): the
    # SDK sends their email with the first person's stored user id. Not a case the graph
    # claims: the identify itself says the email is the first person's.
    SHARED_GUEST = "shared_computer_no_reset_guest_checkout"


LABELS = {
    Scenario.ORDINARY: "1-3 devices, not all identified",
    Scenario.LATE_IDENTIFY: "late identify",
    Scenario.COOKIE_CLEARED: "cookie cleared",
    Scenario.NEVER_IDENTIFIES: "never identifies",
    Scenario.SERVER_SIDE: "server-side by userId",
    Scenario.ALIAS: "alias",
    Scenario.SHARED_RESET: "shared computer, reset",
    Scenario.SHARED_NO_RESET: "shared computer, no reset",
    Scenario.SHARED_LATE_LOGIN: "shared, no reset, login late",
    Scenario.SHARED_GUEST: "shared, no reset, guest checkout",
}
# How often each scenario is drawn; a shared computer draws two people.
WEIGHTS = {
    Scenario.ORDINARY: 30,
    Scenario.LATE_IDENTIFY: 10,
    Scenario.COOKIE_CLEARED: 10,
    Scenario.NEVER_IDENTIFIES: 15,
    Scenario.SERVER_SIDE: 8,
    Scenario.ALIAS: 8,
    Scenario.SHARED_RESET: 7,
    Scenario.SHARED_NO_RESET: 7,
    Scenario.SHARED_LATE_LOGIN: 5,
    Scenario.SHARED_GUEST: 4,
}
PAIRED = {
    Scenario.SHARED_RESET,
    Scenario.SHARED_NO_RESET,
    Scenario.SHARED_LATE_LOGIN,
    Scenario.SHARED_GUEST,
}
# What the identity graph claims to get right (engine/README.md, "Identity rules").
CLAIMED = frozenset(Scenario) - {Scenario.SHARED_GUEST}


@dataclass(frozen=True)
class Settings:
    visitors: int
    seed: int = 7
    start_ms: int = 0
    days: int = 30


@dataclass
class Person:
    name: str
    scenario: Scenario
    # The identifiers this person gave in the events sent (none for one who never identifies).
    user_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)

    @property
    def identifies(self) -> bool:
        return bool(self.user_ids or self.emails)


@dataclass
class Sent:
    message: dict[str, Any]
    person: str
    at_ms: int
    # The person whose user id the event carries when it is not its own (see the module doc).
    named: str | None
    deliver_ms: int


@dataclass
class Population:
    people: dict[str, Person]
    events: list[Sent]  # in the order they reach Bond


@dataclass
class _Browser:
    anonymous_id: str
    user_id: str | None = None


def generate(settings: Settings) -> Population:
    world = _World(settings)
    scenarios = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    while len(world.people) < settings.visitors:
        scenario = world.rng.choices(scenarios, weights)[0]
        if scenario in PAIRED and len(world.people) + 2 <= settings.visitors:
            world.shared(
                world.person(scenario),
                world.person(scenario),
                reset=scenario is Scenario.SHARED_RESET,
                late_login=scenario is Scenario.SHARED_LATE_LOGIN,
                guest=scenario is Scenario.SHARED_GUEST,
            )
        elif scenario not in PAIRED:
            BUILDERS[scenario](world, world.person(scenario))
    # Stable: events delivered at the same moment keep the order they were made in.
    events = sorted(world.events, key=lambda e: e.deliver_ms)
    return Population(world.people, events)


class _World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.people: dict[str, Person] = {}
        self.events: list[Sent] = []
        self.owner_of: dict[str, str] = {}  # user id -> person
        self.browsers = 0

    def person(self, scenario: Scenario) -> Person:
        person = Person(f"p{len(self.people) + 1}", scenario)
        self.people[person.name] = person
        return person

    def browser(self) -> _Browser:
        self.browsers += 1
        return _Browser(f"anon-{self.browsers}-{self.rng.getrandbits(32):08x}")

    def start(self) -> int:
        # A story ends under STORY_DAYS after it starts (the longest: a late identify), so
        # every event falls before the end of the window.
        span = (self.settings.days - STORY_DAYS) * DAY_MS
        return self.settings.start_ms + self.rng.randrange(span)

    def later(self, at: int, low_hours: float, high_hours: float) -> int:
        return at + int(self.rng.uniform(low_hours, high_hours) * HOUR_MS)

    def step(self, at: int) -> int:
        """The next click of a session: seconds later, never at the same millisecond."""
        return at + self.rng.randrange(3_000, 90_000)

    def user_id(self, person: Person) -> str:
        value = f"user-{person.name}-{len(person.user_ids) + 1}"
        person.user_ids.append(value)
        self.owner_of[value] = person.name
        return value

    def email(self, person: Person) -> str:
        if not person.emails:
            person.emails.append(f"{person.name}@visitors.example")
        return person.emails[0]

    def emit(
        self, browser: _Browser | None, person: Person, kind: str, at: int, **fields: Any
    ) -> None:
        message: dict[str, Any] = {
            "type": kind,
            "messageId": f"visitor-{len(self.events) + 1}",
            "timestamp": datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds"),
            "context": CONTEXT,
            **fields,
        }
        if browser is not None:
            message["anonymousId"] = browser.anonymous_id
            if message.get("userId") is None and browser.user_id is not None:
                message["userId"] = browser.user_id
        owner = self.owner_of.get(message.get("userId") or "")
        named = owner if owner is not None and owner != person.name else None
        self.events.append(Sent(message, person.name, at, named, at))

    def browse(self, browser: _Browser, person: Person, at: int) -> int:
        """A visit: a page and a few product views; returns the time of its last event."""
        first = len(self.events)
        at = self.step(at)
        self.emit(browser, person, "page", at, name="Home", properties={"path": "/"})
        for _ in range(self.rng.randint(1, 5)):
            at = self.step(at)
            product = self.rng.choice(PRODUCTS)
            self.emit(
                browser,
                person,
                "track",
                at,
                event="Product Viewed",
                properties={"product_id": product},
            )
        if self.rng.random() < LATE_SHARE:
            self.deliver_late(first, self.later(at, 1, 48))
        return at

    def deliver_late(self, first: int, deliver_ms: int) -> None:
        for offset, sent in enumerate(self.events[first:]):
            sent.deliver_ms = deliver_ms + offset

    def login(self, browser: _Browser, person: Person, at: int, *, email_only: bool = False) -> int:
        """Sign up or log in (a user id and the email), or a guest checkout (the email alone)."""
        at = self.step(at)
        traits = {"email": self.email(person)}
        if email_only:
            self.emit(browser, person, "identify", at, traits=traits)
            return at
        user_id = person.user_ids[-1] if person.user_ids else self.user_id(person)
        browser.user_id = user_id
        self.emit(browser, person, "identify", at, userId=user_id, traits=traits)
        return at

    def server(self, person: Person, kind: str, at: int, **fields: Any) -> None:
        """An event the site's server sends with the user id alone (no anonymous id)."""
        self.emit(None, person, kind, at, userId=person.user_ids[-1], **fields)

    def session(self, browser: _Browser, person: Person, at: int, *, login: bool) -> int:
        at = self.browse(browser, person, at)
        if login:
            at = self.login(browser, person, at)
            at = self.browse(browser, person, at)
        return at

    def shared(self, a: Person, b: Person, *, reset: bool, late_login: bool, guest: bool) -> None:
        """Two people on one family computer, each also on a phone of their own."""
        computer = self.browser()
        at = self.session(computer, a, self.start(), login=True)
        self.leave(computer, reset)
        at = self.later(at, 1, 12)
        first = len(self.events)
        at = self.browse(computer, b, at)
        at = self.browse(computer, b, self.login(computer, b, at, email_only=guest))
        last = len(self.events)
        self.leave(computer, reset)
        at = self.later(at, 1, 24)
        at = self.session(computer, a, at, login=True)
        if late_login:
            for offset, sent in enumerate(self.events[first:last]):
                sent.deliver_ms = at + 1_000 + offset
        for person in (a, b):
            if self.rng.random() < 0.6:
                self.session(self.browser(), person, self.later(at, -48, 48), login=True)

    def leave(self, browser: _Browser, reset: bool) -> None:
        """Log out: with reset() the browser forgets its ids; without, the SDK keeps both."""
        if reset:
            browser.anonymous_id = self.browser().anonymous_id
            browser.user_id = None


def _ordinary(world: _World, person: Person) -> None:
    rng = world.rng
    devices = [world.browser() for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    identifying = [d for d in devices if rng.random() < 0.75] or devices[:1]
    start = world.start()
    for device in devices:
        at = world.later(start, 0, 72)
        visits = rng.randint(1, 3)
        login_at = rng.randrange(visits) if device in identifying else -1
        for visit in range(visits):
            at = world.browse(device, person, at)
            if visit == login_at:
                at = world.login(device, person, at, email_only=rng.random() < 0.2)
                at = world.browse(device, person, at)
            at = world.later(at, 2, 48)


def _late_identify(world: _World, person: Person) -> None:
    """Anonymous visits on one browser, and the identify there days after."""
    laptop = world.browser()
    at = world.start()
    if world.rng.random() < 0.5:
        world.session(world.browser(), person, world.later(at, 1, 48), login=True)
    for _ in range(world.rng.randint(2, 4)):
        at = world.later(world.browse(laptop, person, at), 6, 48)
    world.session(laptop, person, world.later(at, 72, 240), login=True)


def _cookie_cleared(world: _World, person: Person) -> None:
    """Logged in, then cookies cleared: a new anonymous id, and (mostly) a login again."""
    laptop = world.browser()
    at = world.session(laptop, person, world.start(), login=True)
    at = world.browse(laptop, person, world.later(at, 12, 72))
    world.leave(laptop, reset=True)
    world.session(laptop, person, world.later(at, 6, 72), login=world.rng.random() < 0.8)


def _never_identifies(world: _World, person: Person) -> None:
    start = world.start()
    for _ in range(world.rng.randint(1, 2)):
        device = world.browser()
        at = world.later(start, 0, 48)
        for _ in range(world.rng.randint(1, 4)):
            at = world.later(world.browse(device, person, at), 2, 48)


def _server_side(world: _World, person: Person) -> None:
    """The site's server sends orders and renewals by user id alone; sometimes it creates the
    account (an identify by user id) before the person ever logs in on a browser."""
    laptop = world.browser()
    at = world.start()
    if world.rng.random() < 0.4:
        world.user_id(person)
        world.server(person, "identify", at, traits={"email": world.email(person)})
        at = world.later(at, 1, 24)
    at = world.session(laptop, person, at, login=True)
    at = world.step(at)
    order = {"order_id": f"order-{person.name}", "revenue": 42.0, "currency": "EUR"}
    world.server(person, "track", at, event="Order Completed", properties=order)
    world.server(person, "track", world.later(at, 24, 96), event="Subscription Renewed")


def _alias(world: _World, person: Person) -> None:
    """Either a sign-up that aliases the anonymous id to the new user id, or the site's server
    moving a person to a new user id (alias old -> new) before they next log in."""
    laptop, phone = world.browser(), world.browser()
    at = world.browse(laptop, person, world.start())
    if world.rng.random() < 0.5:
        at = world.step(at)
        user_id = world.user_id(person)
        world.emit(laptop, person, "alias", at, userId=user_id, previousId=laptop.anonymous_id)
        laptop.user_id = user_id
        at = world.browse(laptop, person, world.login(laptop, person, at))
        world.session(phone, person, world.later(at, 2, 48), login=True)
        return
    at = world.browse(laptop, person, world.login(laptop, person, at))
    at = world.session(phone, person, world.later(at, 2, 48), login=True)
    old = person.user_ids[-1]
    at = world.later(at, 2, 48)
    world.emit(None, person, "alias", at, userId=world.user_id(person), previousId=old)
    at = world.session(laptop, person, world.later(at, 2, 48), login=True)
    world.session(phone, person, world.later(at, 2, 48), login=True)


BUILDERS = {
    Scenario.ORDINARY: _ordinary,
    Scenario.LATE_IDENTIFY: _late_identify,
    Scenario.COOKIE_CLEARED: _cookie_cleared,
    Scenario.NEVER_IDENTIFIES: _never_identifies,
    Scenario.SERVER_SIDE: _server_side,
    Scenario.ALIAS: _alias,
}
