"""Synthetic households with ground truth: who lives there, when, on what and for what they browse.

Shapes and where they come from (facts, not text, carried over; see README.md here):
- household sizes follow the US Census Bureau's Current Population Survey shares of households by
  size (about 29% one person, 34% two, 15% three, 13% four, 9% five or more); five and more are
  folded into four;
- the hour-of-day activity curves follow the shape of the American Time Use Survey's published
  profiles of leisure and computer use by hour: employed adults peak in the evening (about
  19:00-22:00) with small morning and lunch bumps on weekdays and a broader, later day at
  weekends; people 65 and over are active through the daytime and go to bed earlier; teenagers
  (15-19) are active after school and late at night, later still at weekends;
- category preferences per archetype are illustrative (not from a survey): the point is that
  archetypes overlap, and each member draws a personal taste around their archetype.

The difficulty knob (0 easy .. 1 hard) blends members' hour curves and tastes toward the household
average, moves more sessions onto shared devices, and adds co-browsing sessions (two people at one
screen: the purchaser is one of them and the session carries both tastes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

SIZE_SHARES = {1: 0.289, 2: 0.342, 3: 0.151, 4: 0.218}
CATEGORIES = (
    "electronics",
    "gaming",
    "fashion",
    "beauty",
    "home",
    "kitchen",
    "garden",
    "books",
    "toys",
    "sports",
    "grocery",
    "health",
)
TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
)
USER_AGENTS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1",
}
SESSION_GAP_MIN = 45  # sessions on one device are kept apart by more than the 30-minute gap


@dataclass(frozen=True)
class Archetype:
    name: str
    # (hour, weight, spread in hours) bumps of the weekday and weekend activity curves
    weekday: tuple[tuple[float, float, float], ...]
    weekend: tuple[tuple[float, float, float], ...]
    sessions_per_week: float
    conversion_rate: float
    tastes: dict[str, float]
    laptop: float  # chance of owning a personal laptop besides the phone


ARCHETYPES = {
    a.name: a
    for a in (
        Archetype(
            "working_adult",
            ((7.5, 0.12, 0.8), (12.5, 0.18, 1.0), (20.5, 0.7, 1.4)),
            ((10.5, 0.35, 1.8), (15.0, 0.25, 2.0), (20.5, 0.4, 1.5)),
            3.5,
            0.14,
            {"home": 3, "kitchen": 2, "grocery": 3, "electronics": 2, "fashion": 2, "health": 1},
            0.5,
        ),
        Archetype(
            "retiree",
            ((9.5, 0.35, 1.5), (14.0, 0.4, 2.0), (19.0, 0.25, 1.5)),
            ((10.0, 0.4, 1.8), (15.0, 0.35, 2.0), (19.0, 0.25, 1.5)),
            3.0,
            0.15,
            {"garden": 3, "books": 3, "health": 3, "kitchen": 2, "home": 2, "grocery": 1},
            0.3,
        ),
        Archetype(
            "teen",
            ((7.0, 0.05, 0.5), (16.0, 0.35, 1.2), (21.5, 0.6, 1.5)),
            ((13.0, 0.3, 2.0), (22.5, 0.7, 2.0)),
            4.0,
            0.07,
            {"gaming": 4, "fashion": 3, "beauty": 2, "electronics": 2, "sports": 2, "books": 1},
            0.2,
        ),
        Archetype(
            "young_adult",
            ((12.5, 0.15, 1.0), (18.0, 0.2, 1.2), (22.5, 0.65, 1.8)),
            ((14.0, 0.4, 2.5), (23.0, 0.6, 2.0)),
            4.0,
            0.1,
            {"electronics": 3, "fashion": 3, "sports": 3, "gaming": 2, "beauty": 2, "grocery": 1},
            0.6,
        ),
    )
}


@dataclass
class Device:
    anonymous_id: str
    kind: str
    shared: bool

    @property
    def user_agent(self) -> str:
        return USER_AGENTS[self.kind]


@dataclass
class Member:
    index: int
    archetype: str
    hours: np.ndarray  # (7, 24) probability over local hour-of-week
    tastes: np.ndarray  # over CATEGORIES
    devices: list[Device]
    rate: float  # sessions per week
    active_from: int  # UTC ms
    active_until: int  # UTC ms


@dataclass
class SimSession:
    member: int  # ground truth: who browsed (and, for an order, who bought)
    co_member: int | None  # co-browsing: the other person at the screen
    device: Device
    start_ms: int
    views: list[str]
    order_id: str | None
    order_categories: list[str]


@dataclass
class Change:
    kind: str  # "join" or "leave"
    member: int
    at_ms: int


@dataclass
class Household:
    index: int
    account: str
    timezone: str
    members: list[Member]
    devices: list[Device]
    sessions: list[SimSession] = field(default_factory=list)
    change: Change | None = None

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Settings:
    households: int = 200
    weeks: int = 8
    difficulty: float = 0.5
    seed: int = 7
    start_ms: int = 1_704_067_200_000  # 2024-01-01 UTC: offline runs are reproducible
    change_rate: float = 0.2
    sessions: int | None = None  # stop once this many sessions were generated in total


def generate(settings: Settings) -> list[Household]:
    """Households with their sessions, in household order; sessions are in time order."""
    rng = np.random.default_rng(settings.seed)
    out: list[Household] = []
    total = 0
    for index in range(settings.households):
        household = _household(index, settings, rng)
        out.append(household)
        total += len(household.sessions)
        if settings.sessions is not None and total >= settings.sessions:
            break
    return out


def _household(index: int, s: Settings, rng: np.random.Generator) -> Household:
    d = min(max(s.difficulty, 0.0), 1.0)
    sizes = list(SIZE_SHARES)
    size = int(
        rng.choice(sizes, p=np.array(list(SIZE_SHARES.values())) / sum(SIZE_SHARES.values()))
    )
    end_ms = s.start_ms + s.weeks * 7 * 86_400_000
    kinds = _composition(size, rng)
    change: Change | None = None
    change_at = int(s.start_ms + rng.uniform(2.5, 5.5) * 7 * 86_400_000)
    change_kind = None
    if rng.random() < s.change_rate:
        change_kind = "leave" if size >= 2 and rng.random() < 0.5 else "join"
        if change_kind == "join":
            kinds.append(str(rng.choice(["teen", "young_adult", "working_adult"])))
    tz = str(rng.choice(TIMEZONES))
    account = f"acct-{s.seed}-{index}"
    shared = [Device(f"{account}-shared-desktop", "desktop", True)]
    if len(kinds) >= 2 and rng.random() < 0.4:
        shared.append(Device(f"{account}-shared-tablet", "tablet", True))

    raw_hours = [_hour_curve(ARCHETYPES[k], rng) for k in kinds]
    raw_tastes = [_tastes(ARCHETYPES[k], rng) for k in kinds]
    mean_hours = np.mean(raw_hours, axis=0)
    mean_tastes = np.mean(raw_tastes, axis=0)
    blend = 0.3 * d * d
    members: list[Member] = []
    for i, kind in enumerate(kinds):
        arch = ARCHETYPES[kind]
        personal = []
        if rng.random() < 0.9:
            personal.append(Device(f"{account}-m{i}-phone", "mobile", False))
        if rng.random() < arch.laptop:
            personal.append(Device(f"{account}-m{i}-laptop", "desktop", False))
        hours = (1 - blend) * raw_hours[i] + blend * mean_hours
        tastes = (1 - blend) * raw_tastes[i] + blend * mean_tastes
        active_from, active_until = s.start_ms, end_ms
        if change_kind == "join" and i == len(kinds) - 1:
            active_from = change_at
            change = Change("join", i, change_at)
        members.append(
            Member(
                i,
                kind,
                hours / hours.sum(),
                tastes / tastes.sum(),
                personal,
                arch.sessions_per_week * rng.gamma(4.0, 0.25),
                active_from,
                active_until,
            )
        )
    if change_kind == "leave":
        leaver = int(rng.integers(len(members)))
        members[leaver].active_until = change_at
        change = Change("leave", leaver, change_at)
    household = Household(
        index,
        account,
        tz,
        members,
        shared + [dev for m in members for dev in m.devices],
        change=change,
    )
    household.sessions = _sessions(household, shared, s, d, rng)
    return household


def _composition(size: int, rng: np.random.Generator) -> list[str]:
    adult = "working_adult"
    if size == 1:
        return [adult if rng.random() < 0.7 else "retiree"]
    couple = [
        [adult, adult],
        [adult, "retiree"],
        ["retiree", "retiree"],
        [adult, "teen"],
    ][int(rng.choice(4, p=[0.5, 0.15, 0.2, 0.15]))]
    if size == 2:
        return couple
    kids = ["teen" if rng.random() < 0.6 else "young_adult" for _ in range(size - 2)]
    return [adult, adult, *kids]


def _hour_curve(arch: Archetype, rng: np.random.Generator) -> np.ndarray:
    """(7, 24) weights: Monday..Sunday by local hour, from the archetype's bumps, personalised."""
    shift = rng.normal(0.0, 1.0)
    hours = np.arange(24) + 0.5
    curves = []
    for bumps in (arch.weekday, arch.weekend):
        curve = np.full(24, 0.01)
        for centre, weight, spread in bumps:
            gap = (hours - centre - shift + 12) % 24 - 12
            curve += weight * rng.lognormal(0.0, 0.3) * np.exp(-0.5 * (gap / spread) ** 2)
        curves.append(curve / curve.sum())
    return np.vstack([curves[0]] * 5 + [curves[1]] * 2)


def _tastes(arch: Archetype, rng: np.random.Generator) -> np.ndarray:
    base = np.array([arch.tastes.get(c, 0.3) for c in CATEGORIES], dtype=float)
    base = base * rng.lognormal(0.0, 0.8, size=len(CATEGORIES))
    return rng.dirichlet(base / base.sum() * 8.0) + 1e-3


def _sessions(
    household: Household,
    shared: list[Device],
    s: Settings,
    d: float,
    rng: np.random.Generator,
) -> list[SimSession]:
    zone = ZoneInfo(household.timezone)
    shared_use = 0.15 + 0.3 * d
    co_browse = 0.02 + 0.06 * d
    start_local = datetime.fromtimestamp(s.start_ms / 1000, zone).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    # Align to a Monday so the (7, 24) curves line up with weekdays.
    start_local -= timedelta(days=start_local.weekday())
    sessions: list[SimSession] = []
    order_no = 0
    for week in range(s.weeks + 1):
        for member in household.members:
            count = rng.poisson(member.rate)
            slots = rng.choice(7 * 24, size=count, p=member.hours.ravel())
            for slot in slots:
                day, hour = divmod(int(slot), 24)
                local = start_local + timedelta(
                    days=7 * week + day, hours=hour, minutes=float(rng.uniform(0, 60))
                )
                start_ms = int(local.timestamp() * 1000)
                if not member.active_from <= start_ms < member.active_until:
                    continue
                others = [
                    m
                    for m in household.members
                    if m.index != member.index and m.active_from <= start_ms < m.active_until
                ]
                co = (
                    others[int(rng.integers(len(others)))]
                    if others and rng.random() < co_browse
                    else None
                )
                if co is not None or not member.devices or rng.random() < shared_use:
                    device = shared[int(rng.integers(len(shared)))]
                else:
                    device = member.devices[int(rng.integers(len(member.devices)))]
                tastes = member.tastes if co is None else 0.5 * (member.tastes + co.tastes)
                n_views = 1 + int(rng.geometric(0.25))
                views = [str(c) for c in rng.choice(CATEGORIES, size=n_views, p=tastes)]
                order_id = None
                order_categories: list[str] = []
                if rng.random() < ARCHETYPES[member.archetype].conversion_rate:
                    order_no += 1
                    order_id = f"{household.account}-o{order_no}"
                    n_items = 1 + int(rng.integers(3))
                    order_categories = [
                        str(c) for c in rng.choice(CATEGORIES, size=n_items, p=member.tastes)
                    ]
                sessions.append(
                    SimSession(
                        member.index,
                        co.index if co else None,
                        device,
                        start_ms,
                        views,
                        order_id,
                        order_categories,
                    )
                )
    sessions.sort(key=lambda x: x.start_ms)
    return _spread_on_devices(sessions)


def _spread_on_devices(sessions: list[SimSession]) -> list[SimSession]:
    # Two sessions on one browser less than 30 minutes apart are one session to any tracker;
    # pushing the later one back keeps each simulated session a session the engine can see.
    last: dict[str, int] = {}
    for session in sessions:
        previous = last.get(session.device.anonymous_id)
        earliest = previous + SESSION_GAP_MIN * 60_000 if previous is not None else None
        if earliest is not None and session.start_ms < earliest:
            session.start_ms = earliest
        last[session.device.anonymous_id] = session.start_ms + session_length_ms(session)
    sessions.sort(key=lambda x: x.start_ms)
    return sessions


def session_length_ms(session: SimSession) -> int:
    events = len(session.views) + (1 if session.order_id else 0)
    return events * EVENT_SPACING_MS


EVENT_SPACING_MS = 90_000
