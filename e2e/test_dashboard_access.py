"""The live dashboard for a sales person on a keyboard, a touch screen, a screen reader or a
200% zoom, in Chromium against the whole stack: every view reached and worked with the keys
alone, the focus always visible and landing on each view's heading, every control named in the
accessibility tree, text contrast to WCAG AA, nothing cut off at 200%, no animation for those
who asked for less motion, every time's exact UTC instant shown without a mouse, chart lines
and a household's members told apart without colour, and every chart named with its series and
their values. One stack for the module, seeded once."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from bond.simulate.households import Settings, generate
from bond.simulate.offline import batches
from bond.simulate.traffic import messages
from conftest import ADMIN_TOKEN, WRITE_KEY, wait_until
from e2e.conftest import DELIVERY_TIMEOUT, Stack
from e2e.test_dashboard import RULE, Dashboard, configured_stack, open_tab
from engine.alerts.fake_discord import FakeDiscord
from tests.engine.alerts.alert_support import fake_discord

# 200% zoom on a 1280 x 900 laptop: the page lays itself out in half the CSS pixels.
ZOOMED: dict[str, Any] = {
    "viewport": {"width": 640, "height": 450},
    "device_scale_factor": 2,
    "reduced_motion": "reduce",
}
BROWSING = 60  # Ada's page views: more than the first page of her timeline (50)
BUYERS = ("ada@example.com", "grace@example.com")
AA_TEXT, AA_LARGE_TEXT, AA_FOCUS_RING = 4.5, 3.0, 3.0
CONTROLS = re.compile(r"^\s*- (button|link|textbox|searchbox|combobox|checkbox|radio|tab)\b(.*)$")

# Colour arithmetic in the page, from computed styles (WCAG 2 relative luminance).
COLOUR_JS = """
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) =>
    [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const linear = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const luminance = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  // The colour behind an element: its own and its ancestors' backgrounds, stacked on white.
  const behind = (node) => {
    const layers = [];
    for (let e = node; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg[3] > 0) layers.push(bg);
      if (bg[3] >= 1) break;
    }
    return layers.reverse().reduce((under, layer) => over(layer, under), [255, 255, 255, 1]);
  };
  const against = (colour, node) => contrast(over(parse(colour), behind(node)), behind(node));
"""

# Every visible piece of text whose contrast with what is behind it is under AA, placeholders
# included. Avatars are left out: their initial repeats the name beside them, hidden from
# screen readers.
LOW_CONTRAST_JS = f"""([normal, large]) => {{ {COLOUR_JS}
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {{
    const e = t.parentElement;
    if (!t.textContent.trim() || e.closest('.avatar, [disabled]')) continue;
    const box = e.getBoundingClientRect();
    const style = getComputedStyle(e);
    if (!box.width || !box.height || style.visibility !== 'visible') continue;
    const ratio = against(style.color, e);
    const size = parseFloat(style.fontSize);
    const big = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const text = t.textContent.trim().slice(0, 40);
    if (ratio < (big ? large : normal)) low.push(`${{ratio.toFixed(2)}}:1 "${{text}}"`);
  }}
  for (const input of document.querySelectorAll('input[placeholder]')) {{
    const ratio = against(getComputedStyle(input, '::placeholder').color, input);
    if (input.offsetWidth && ratio < normal) low.push(`${{ratio.toFixed(2)}}:1 placeholder`);
  }}
  return low;
}}"""

# What has the focus, and whether a sighted keyboard user sees that it has: an outline the
# browser draws itself ("auto"), or one of ours with 3:1 against what is behind it.
FOCUSED_JS = f"""() => {{ {COLOUR_JS}
  const e = document.activeElement;
  const style = getComputedStyle(e);
  let ring = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  if (ring && style.outlineStyle !== 'auto') {{
    ring = against(style.outlineColor, e.parentElement) >= {AA_FOCUS_RING};
  }}
  return {{
    body: e === document.body, inMain: !!e.closest('#main'), ring,
    top: e.getBoundingClientRect().top,
    headerBottom: document.querySelector('.topbar').getBoundingClientRect().bottom,
  }};
}}"""

# Whatever is cut off: past the page's edges, or clipped inside a box that does not scroll.
CUT_OFF_JS = """() => {
  const cut = [];
  const page = document.documentElement.scrollWidth;
  if (page > innerWidth) cut.push(`the page scrolls sideways: ${page}px`);
  for (const e of document.querySelectorAll('body *')) {
    const box = e.getBoundingClientRect();
    // Nothing to see, or hidden from sight on purpose (a table's header row on a narrow page).
    if (!box.width || (box.width <= 1 && box.height <= 1)) continue;
    const name = `${e.tagName}.${e.className} "${e.textContent.trim().slice(0, 30)}"`;
    if (box.right > innerWidth + 0.5 || box.left < -0.5) cut.push(`past the edge: ${name}`);
    const clips = ['hidden', 'clip'].includes(getComputedStyle(e).overflowX);
    if (clips && e.scrollWidth > e.clientWidth + 1) cut.push(`clipped: ${name}`);
  }
  for (const input of document.querySelectorAll('input[placeholder]')) {
    if (!input.offsetWidth) continue;
    const value = input.value;
    input.value = input.placeholder;
    if (input.scrollWidth > input.clientWidth + 1) cut.push(`cut: ${input.placeholder}`);
    input.value = value;
  }
  return cut;
}"""


@dataclass
class Seeded:
    ada: int
    household: int
    account: str  # the household's user id, its name on the dashboard
    alerts: dict[str, int]  # how many alerts in each state


@pytest.fixture(scope="module")
def discord() -> Iterator[FakeDiscord]:
    """The first alert finds the webhook gone, the others go through."""
    with fake_discord() as fake:
        fake.then("404")
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, discord: FakeDiscord) -> Iterator[Stack]:
    toml = f'[alerts]\nwebhook_url = "{discord.url}"\n{RULE}'
    yield from configured_stack(tmp_path_factory.mktemp("access"), toml)


def post(stack: Stack, batch: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=stack.collector.url, timeout=30) as client:
        for part in batches(batch, 500):
            response = client.post("/v1/batch", json={"writeKey": WRITE_KEY, "batch": part})
            assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    """A household's weeks of sessions, then two buyers, each checkout raising an alert; Ada
    browsed a long while first."""
    day, week = 86_400_000, 7 * 86_400_000
    monday = (int(time.time() * 1000) - 4 * day) // week * week + 4 * day
    settings = Settings(households=12, weeks=8, difficulty=0.1, seed=5, start_ms=monday - 10 * week)
    family = next(h for h in generate(settings) if h.size >= 2)
    post(stack, list(messages([family])))
    buyers: list[dict[str, Any]] = [
        {
            "type": "page",
            "anonymousId": "browser-0",
            "properties": {"path": f"/catalogue.html?page={n}"},
        }
        for n in range(BROWSING)
    ]
    for n, email in enumerate(BUYERS):
        browser = f"browser-{n}"
        buyers += [
            {"type": "page", "anonymousId": browser, "properties": {"path": "/"}},
            {
                "type": "track",
                "anonymousId": browser,
                "event": "Product Viewed",
                "properties": {"name": "Monstera", "product_id": "monstera"},
            },
            {"type": "identify", "anonymousId": browser, "traits": {"email": email}},
            {
                "type": "track",
                "anonymousId": browser,
                "event": "Order Completed",
                "properties": {"order_id": f"FK-{n}", "revenue": 68, "currency": "EUR"},
            },
        ]
    post(stack, buyers)
    # The household's account has orders too: the first alert of all fails, the others go.
    wait_until(
        lambda: (
            {a["state"] for a in stack.api.get("/alerts").json()["alerts"]} == {"failed", "sent"}
        ),
        timeout=DELIVERY_TIMEOUT,
        what="every alert delivered or failed",
    )
    account = stack.api.get("/persons", user_id=family.account).json()["id"]
    wait_until(
        lambda: len(stack.api.get(f"/persons/{account}/household").json()["members"]) >= 2,
        timeout=DELIVERY_TIMEOUT,
        what="the household's members",
    )
    ada = stack.person(BUYERS[0])
    assert ada is not None
    counts = Counter(a["state"] for a in stack.api.get("/alerts").json()["alerts"])
    return Seeded(ada["id"], account, family.account, dict(counts))


@pytest.fixture(scope="module")
def dashboard(browser: Browser, stack: Stack, seeded: Seeded) -> Iterator[Dashboard]:
    for tab in open_tab(browser, stack):
        tab.log_in()
        yield tab


@pytest.fixture(scope="module")
def zoomed(browser: Browser, stack: Stack, seeded: Seeded) -> Iterator[Dashboard]:
    """A tab at 200% zoom that asked the system for reduced motion."""
    tab = Dashboard(browser, stack.api.url.removesuffix("/api"), **ZOOMED)
    tab.log_in()
    yield tab
    tab.close()
    assert not tab.problems, tab.problems


def focused(page: Page) -> str:
    """The focused element as the accessibility tree has it: its role and name."""
    if page.evaluate("document.activeElement === document.body"):
        return "nothing"
    return (page.locator("*:focus").aria_snapshot().splitlines() or [""])[0].removesuffix(":")


def press(page: Page, key: str) -> dict[str, Any]:
    """Press `key` and check that wherever the focus lands in the page, it is seen."""
    page.keyboard.press(key)
    where: dict[str, Any] = page.evaluate(FOCUSED_JS)
    if not where["body"]:
        assert where["ring"], f"no visible focus on {focused(page)}"
    return where


def tab_to(page: Page, name: str, key: str = "Tab", limit: int = 200) -> None:
    """Press Tab (or Shift+Tab) until `name` (a role and name) has the focus."""
    for _ in range(limit):
        if not press(page, key)["body"] and focused(page) == name:
            return
    raise AssertionError(f"{name} not reached with {key} in {limit} presses")


def walk(page: Page, limit: int = 200) -> list[str]:
    """Tab through the rest of the view: every stop named, the focus seen at each, and out
    at the end (no trap). The names of the stops, in order."""
    stops: list[str] = []
    for _ in range(limit):
        if not press(page, "Tab")["inMain"]:
            return stops
        stops.append(focused(page))
        assert CONTROLS.match(stops[-1]) is None or '"' in stops[-1], f"unnamed: {stops[-1]}"
    raise AssertionError(f"still in the view after {limit} presses: {stops[-5:]}")


def on_heading(page: Page, text: str) -> None:
    """After a navigation, the view's heading has the focus (a screen reader reads it)."""
    wait_until(
        lambda: page.evaluate("document.activeElement.tagName") == "H1",
        what=f"the focus on the heading {text!r}",
    )
    assert focused(page) == f'- heading "{text}" [level=1]'
    assert page.evaluate(FOCUSED_JS)["ring"]


def go(page: Page, tab: str, heading: str) -> None:
    """Back to the top bar with Shift+Tab, to the view's tab, and Enter."""
    tab_to(page, f'- link "{tab}"', "Shift+Tab")
    page.keyboard.press("Enter")
    on_heading(page, heading)


def state_button(seeded: Seeded, state: str) -> str:
    """An alert state's button on the alerts view, with the number of alerts in it."""
    count = sum(seeded.alerts.values()) if state == "All" else seeded.alerts.get(state.lower(), 0)
    return f'- button "{state} {count}"'


def views(seeded: Seeded) -> list[tuple[str, str]]:
    """Every view, and what shows it has drawn its data."""
    return [
        ("live", "#live-table tbody tr"),
        ("stitches", "#stitch-list li[data-kind]"),
        ("people", "#people-list li[data-person]"),
        (f"people/{seeded.ada}", "#timeline .tl-item"),
        ("households", ".household-card"),
        (f"households/{seeded.household}", "#conversions tbody tr"),
        ("alerts", "#alerts tr[data-state=sent]"),
        ("health", "#health-counts .stat"),
    ]


def hex_colour(value: str) -> tuple[int, int, int]:
    value = value.strip().lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2's contrast ratio of two colours."""

    def luminance(colour: tuple[int, int, int]) -> float:
        r, g, b = (
            c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour
        )
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# Each text colour of the stylesheet on each background it is written on, states included that
# the seed does not show (a pending alert, a stopped worker, a refusal).
PAIRS = [
    ("--text", "--surface"),
    ("--text-2", "--surface"),
    ("--muted", "--surface"),
    ("--muted", "--surface-2"),
    ("--muted", "--bg"),
    ("--faint", "--surface"),
    ("--faint", "--surface-2"),
    ("--accent", "--surface"),
    ("--accent-text", "--accent-soft"),
    ("--green-text", "--green-soft"),
    ("--amber-text", "--amber-soft"),
    ("--amber-text", "--surface"),
    ("--red-text", "--red-soft"),
    ("--red-text", "--surface"),
    ("--blue-text", "--blue-soft"),
    ("--violet-text", "--violet-soft"),
]


def test_every_view_by_keyboard_alone_with_the_focus_on_its_heading(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    page = dashboard.page
    dashboard.view("live", "#live-table tbody tr")
    header = []
    for _ in range(9):
        press(page, "Tab")
        header.append(focused(page))
    views = ("Live", "Stitches", "People", "Households", "Alerts", "Health")
    tabs = [f'- link "{v}"' for v in views]
    assert header == ['- link "Bond"', *tabs, '- button "UTC times"', '- button "Log out"']

    # Live: the type filter, the text filter and pause, with the keys alone.
    tab_to(page, '- button "Tracks"')
    page.keyboard.press("Space")
    assert focused(page) == '- button "Tracks" [pressed]'
    tab_to(page, '- searchbox "Filter events"')
    page.keyboard.type("monstera")
    types = page.locator("#live-table tbody td[data-label=Type]").all_inner_texts()
    assert types and set(types) == {"track"}
    press(page, "Tab")
    assert focused(page) == '- button "Pause"'
    page.keyboard.press("Space")
    # A toggle whose name changes says nothing of a pressed state (it would read "Resume,
    # pressed"): its name alone tells what pressing it does.
    assert focused(page) == '- button "Resume"'
    assert "Paused" in page.inner_text(".live-meta")
    page.keyboard.press("Enter")
    assert focused(page) == '- button "Pause"'
    assert '- link "ada@example.com"' in walk(page)

    go(page, "Stitches", "Stitches")
    assert '- link "History of ada@example.com"' in walk(page)

    go(page, "People", "People")
    press(page, "Tab")
    assert focused(page) == '- searchbox "ada@example.com, a user id or an anonymous id"'
    page.keyboard.type(BUYERS[1])
    page.keyboard.press("Enter")
    on_heading(page, BUYERS[1])
    assert walk(page) == []  # nothing to operate on a short history

    go(page, "Households", "Households")
    card = next(stop for stop in walk(page) if seeded.account in stop)
    tab_to(page, card)  # round again from the top of the page
    page.keyboard.press("Enter")
    on_heading(page, f"Household of {seeded.account}")
    assert walk(page) == ['- link "account timeline"']

    go(page, "Alerts", "Alerts")
    tab_to(page, state_button(seeded, "Failed"))
    page.keyboard.press("Space")
    assert focused(page) == f"{state_button(seeded, 'Failed')} [pressed]"
    assert page.locator("#alerts tbody tr").count() == seeded.alerts["failed"]
    assert "404" in page.inner_text("#alerts tbody tr[data-state=failed]")
    tab_to(page, state_button(seeded, "All"), "Shift+Tab")
    page.keyboard.press("Space")
    assert page.locator("#alerts tbody tr").count() == sum(seeded.alerts.values())
    walk(page)

    go(page, "Health", "Health")
    assert walk(page) == []
    go(page, "Live", "Live stream")


def test_the_focus_stays_put_through_load_older_and_refreshes(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    page = dashboard.page
    dashboard.view(f"people/{seeded.ada}", "#older")
    tab_to(page, '- button "Load older"')
    page.keyboard.press("Enter")
    # The button goes with the last page: the first event it brought has the focus.
    wait_until(
        lambda: page.evaluate(
            "[...document.querySelectorAll('#timeline li[data-seq]')]"
            ".indexOf(document.activeElement) === 50"
        ),
        what="the focus on the first older event",
    )
    assert "Viewed /catalogue.html?page=" in page.evaluate("document.activeElement.textContent")
    assert page.evaluate(FOCUSED_JS)["ring"]

    # The alerts view rereads its alerts every few seconds and draws them again.
    dashboard.view("alerts", "#alerts tbody tr")
    tab_to(page, '- link "ada@example.com"')
    page.evaluate("document.querySelector('#alerts tbody').dataset.drawn = 'before'")
    page.wait_for_selector("#alerts tbody:not([data-drawn])", state="attached", timeout=10_000)
    assert focused(page) == '- link "ada@example.com"'
    assert page.evaluate("document.activeElement.closest('#alerts') !== null")


def test_every_control_has_a_name_and_the_feed_does_not_flood_a_screen_reader(
    browser: Browser, dashboard: Dashboard, seeded: Seeded
) -> None:
    login = Dashboard(browser, dashboard.base)
    try:
        login.open()
        login.page.wait_for_url("**/dashboard/login")
        form = login.page.locator("main").aria_snapshot()
        assert '- textbox "Admin token"' in form and '- button "Log in"' in form
        assert focused(login.page) == '- textbox "Admin token"'
        assert login.page.evaluate(LOW_CONTRAST_JS, [AA_TEXT, AA_LARGE_TEXT]) == []
        login.page.keyboard.type(ADMIN_TOKEN)
        login.page.keyboard.press("Enter")
        login.page.wait_for_selector("#main .page-head")
    finally:
        login.close()
    assert not login.problems, login.problems

    page = dashboard.page
    for route, ready in views(seeded):
        dashboard.view(route, ready)
        tree = page.locator("body").aria_snapshot()
        unnamed = [line for line in tree.splitlines() if (m := CONTROLS.match(line)) and not m[2]]
        assert unnamed == [], (route, unnamed)
        assert "- status: Live" in tree  # the stream's state, said once when it changes
        for table in page.locator("#main table").all():
            headers = table.get_by_role("columnheader").count()
            assert headers == table.locator("th").count() > 0, route
        if route == "alerts":
            for state in ("All", "Pending", "Sent", "Failed"):
                assert f"{state_button(seeded, state)}\n" in tree.replace(" [pressed]", "")
        if route == "health":
            page.wait_for_selector("#health-lag .unit")
            assert re.search(r"[\d,]+ events behind", page.locator("#health-lag").aria_snapshot())
        if route.startswith("households/"):
            assert '- text: "1"' not in page.locator("#members").aria_snapshot()

    # Five events a second read out one by one drown everything else: the feed is no live
    # region, nor inside one, and neither is the count of what arrived while paused.
    dashboard.view("live", "#live-table tbody tr")
    live = (
        "[aria-live]:not([aria-live=off]), [role=log], [role=status], [role=alert], [role=marquee]"
    )
    for part in ("#live-table", ".live-meta"):
        assert page.evaluate(f"document.querySelector('{part}').closest('{live}')") is None
        assert page.locator(part).locator(live).count() == 0


def test_text_contrast_meets_wcag_aa_and_states_are_words(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    page = dashboard.page
    dashboard.view("live", "#live-table tbody tr")
    variables: dict[str, str] = page.evaluate(
        """(names) => Object.fromEntries(names.map((n) =>
            [n, getComputedStyle(document.documentElement).getPropertyValue(n)]))""",
        sorted({name for pair in PAIRS for name in pair}),
    )
    ratios = {pair: contrast(*(hex_colour(variables[name]) for name in pair)) for pair in PAIRS}
    assert {pair: round(ratio, 2) for pair, ratio in ratios.items() if ratio < AA_TEXT} == {}

    for route, ready in views(seeded):
        dashboard.view(route, ready)
        if route == "health":
            page.wait_for_selector("#health-chart .axis")
        assert page.evaluate(LOW_CONTRAST_JS, [AA_TEXT, AA_LARGE_TEXT]) == [], route

    # A delivery's state is a word in its row, not only the colour of its badge.
    dashboard.view("alerts", "#alerts tr[data-state=sent]")
    for state in ("sent", "failed"):
        cells = page.locator(f"#alerts tr[data-state={state}] td[data-label=State]")
        assert set(cells.all_inner_texts()) == {state}


def test_at_200_percent_zoom_nothing_is_cut_off_or_hidden_under_the_top_bar(
    zoomed: Dashboard, seeded: Seeded
) -> None:
    page = zoomed.page
    for route, ready in views(seeded):
        zoomed.view(route, ready)
        assert page.evaluate(CUT_OFF_JS) == [], route
        # Rows read as cards here; a screen reader still hears each cell with its column.
        for table in page.locator("#main table").all():
            columns = table.get_by_role("columnheader").count()
            assert columns == table.locator("th").count(), route
            for row in table.locator("tbody tr").all()[:5]:
                assert row.get_by_role("cell").count() == columns, route

    # Tabbing back up the alerts: each control comes to rest below the sticky top bar.
    zoomed.view("alerts", "#alerts tr[data-state=sent]")
    tab_to(page, state_button(seeded, "Failed"))
    stops = len(walk(page))
    hidden = []
    for _ in range(stops):
        where = press(page, "Shift+Tab")
        if where["inMain"] and (where["top"] < where["headerBottom"] - 0.5):
            hidden.append(focused(page))
    assert hidden == []


def test_reduced_motion_stops_every_animation(
    stack: Stack, zoomed: Dashboard, seeded: Seeded
) -> None:
    page = zoomed.page
    zoomed.view("live", "#live-table tbody tr")
    page.wait_for_selector("#connection[data-state=live]")
    post(stack, [{"type": "track", "anonymousId": "calm", "event": "Motion Checked"}])
    page.wait_for_selector("#live-table tr.fresh:has-text('Motion Checked')")
    running = page.evaluate(
        "document.getAnimations().map((a) => `${a.animationName} on ${a.effect.target.className}`)"
    )
    assert running == []


# Every time a view shows, as the page has it: its instant (the `datetime` of its <time>), what
# it reads as shown (innerText: what is on screen), and whether its holder has the hover text.
TIMES_JS = """() => [...document.querySelectorAll('#main time')].map((t) => ({
  datetime: t.getAttribute('datetime'),
  shown: t.innerText.replace(/\\s+/g, ' ').trim(),
  hover: (t.parentElement.getAttribute('title') || '').endsWith(' UTC'),
}))"""

# Whatever gives a UTC time on hover alone: a title with no <time> in it to show it otherwise.
HOVER_ONLY_JS = """() => [...document.querySelectorAll('#main [title]')]
  .filter((e) => / UTC$/.test(e.title) && !e.querySelector(':scope > time[datetime]'))
  .map((e) => `${e.tagName}.${e.className} "${e.textContent.trim().slice(0, 30)}"`)"""

UTC_SHOWN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def in_utc(instant: str) -> str:
    """A <time>'s datetime as the page writes an exact time: to the second, in UTC."""
    return datetime.fromisoformat(instant).strftime("%Y-%m-%d %H:%M:%S UTC")


def times_on(dashboard: Dashboard, route: str, ready: str) -> list[dict[str, Any]]:
    """Open `route` and read its times, once its data (and the health chart's axis) is drawn."""
    dashboard.view(route, ready)
    if route == "health":
        dashboard.page.wait_for_selector("#health-chart .axis")
    assert dashboard.page.evaluate(HOVER_ONLY_JS) == [], route
    times: list[dict[str, Any]] = dashboard.page.evaluate(TIMES_JS)
    assert all(t["hover"] for t in times), route  # a mouse still gets both forms on hover
    return times


def test_every_time_shows_its_exact_utc_instant_to_the_keyboard_and_a_screen_reader(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    page = dashboard.page
    local = {route: times_on(dashboard, route, ready) for route, ready in views(seeded)}
    # Every view with times has them as <time> elements, none of them in UTC yet.
    assert [route for route, times in local.items() if not times] == ["households"]
    assert not [t for times in local.values() for t in times if UTC_SHOWN.search(t["shown"])]

    # One stop in the top bar, for every view, instead of one on each time.
    dashboard.view("live", "#live-table tbody tr")
    tab_to(page, '- button "UTC times"')
    page.keyboard.press("Space")
    assert focused(page) == '- button "UTC times" [pressed]'
    try:
        for route, ready in views(seeded):
            times = times_on(dashboard, route, ready)
            assert len(times) >= len(local[route]), route
            wrong = [t for t in times if not t["shown"].endswith(in_utc(t["datetime"]))]
            assert wrong == [], route
            # A screen reader reads the exact instant where the time stands.
            tree = page.locator("#main").aria_snapshot()
            missing = [t["shown"] for t in times if in_utc(t["datetime"]) not in tree]
            assert missing == [], route
            if route == "people/" + str(seeded.ada):
                # A time said in a sentence keeps its words, with the instant after them.
                browsers = [t["shown"] for t in times if t["shown"].startswith("identified ")]
                assert browsers and all(", at " in b for b in browsers)
        # The choice is kept for the next visit.
        dashboard.view("alerts", "#alerts tr[data-state=sent]")
        assert page.get_attribute("#utc-times", "aria-pressed") == "true"
        sent = page.inner_text("#alerts tr[data-state=sent] td[data-label=Delivery]")
        assert UTC_SHOWN.search(sent) and sent.startswith("sent ")
    finally:
        tab_to(page, '- button "UTC times" [pressed]', "Shift+Tab")
        page.keyboard.press("Enter")
    assert focused(page) == '- button "UTC times"'
    times = times_on(dashboard, "live", "#live-table tbody tr")
    assert times and not [t for t in times if UTC_SHOWN.search(t["shown"])]


def test_a_tap_shows_exact_times_on_a_touch_screen_with_nothing_cut_off(
    browser: Browser, stack: Stack, seeded: Seeded
) -> None:
    """A phone at 200% text: the toggle is tapped, and the longer times still fit every view."""
    tab = Dashboard(browser, stack.api.url.removesuffix("/api"), has_touch=True, **ZOOMED)
    try:
        tab.log_in()
        tab.view("live", "#live-table tbody tr")
        tab.page.tap("#utc-times")
        assert tab.page.get_attribute("#utc-times", "aria-pressed") == "true"
        for route, ready in views(seeded):
            times = times_on(tab, route, ready)
            assert all(t["shown"].endswith(in_utc(t["datetime"])) for t in times), route
            assert tab.page.evaluate(CUT_OFF_JS) == [], route
            assert tab.page.evaluate(LOW_CONTRAST_JS, [AA_TEXT, AA_LARGE_TEXT]) == [], route
        tab.shoot("utc-times-health")
    finally:
        tab.close()
    assert not tab.problems, tab.problems


# A line as drawn, or its sample in a legend: its colour and its dash.
LOOK_JS = """
  const look = (e) => {
    if (!e) return { stroke: 'none', dash: 'no sample' };
    const style = getComputedStyle(e);
    return { stroke: style.stroke, dash: style.strokeDasharray };
  };
"""

# Each line of the health chart and each legend's sample of it: colour, dash and name.
LINES_JS = f"""() => {{ {LOOK_JS}
  return {{
    lines: [...document.querySelectorAll('#health-chart path[data-series]')]
      .map((p) => ({{ name: p.dataset.series, ...look(p) }})),
    legend: [...document.querySelectorAll('.legend [data-series]')]
      .map((s) => ({{ name: s.textContent.trim(), ...look(s.querySelector('svg line')) }})),
    counts: [...document.querySelectorAll('#health-counts .stat')]
      .map((s) => ({{ name: s.querySelector('[data-count]').dataset.count,
        ...look(s.querySelector('.stat-label svg line')) }})),
  }};
}}"""


def test_the_health_charts_lines_differ_by_dash_as_well_as_colour(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    page = dashboard.page
    dashboard.view("health", "#health-chart svg.chart")
    drawn = page.evaluate(LINES_JS)
    names = ["accepted", "rejected", "deduplicated"]
    assert [line["name"] for line in drawn["lines"]] == names
    # Solid, dashed, dotted: no two lines alike once colour is taken away.
    dashes = [line["dash"] for line in drawn["lines"]]
    assert len(set(dashes)) == len(names), dashes
    # The legend keeps its words, and each word's sample is its line: colour and dash.
    assert drawn["legend"] == drawn["lines"]
    assert drawn["counts"] == drawn["lines"]
    assert page.locator("#health-chart svg.chart").get_attribute("aria-label")


# A household's activity curves, the samples in the chart's legend and on each member's card:
# colour, dash and name.
CURVES_JS = f"""() => {{ {LOOK_JS}
  return {{
    curves: [...document.querySelectorAll('svg.curves path[data-series]')]
      .map((p) => ({{ name: p.dataset.series, ...look(p) }})),
    legend: [...document.querySelectorAll('.legend [data-series]')]
      .map((s) => ({{ name: s.textContent.trim(), ...look(s.querySelector('svg line')) }})),
    cards: [...document.querySelectorAll('#members .member h3')]
      .map((h) => ({{ name: h.textContent.trim(), ...look(h.querySelector('svg line')) }})),
  }};
}}"""

# Each order's probability bar, part by part (whose it is, how much of the bar it takes, the
# number written in it and how that reads on its colour), and its legend: each member's key and
# what is written beside it.
PARTS_JS = f"""() => {{ {COLOUR_JS}
  const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5;
  return [...document.querySelectorAll('#conversions tbody tr')].map((row) => {{
    const bar = row.querySelector('svg.prob-bar');
    const texts = [...bar.querySelectorAll('text[data-member]')];
    return {{
      bar: [...bar.querySelectorAll('rect[data-member]')].map((r) => {{
        const box = r.getBoundingClientRect();
        const text = texts.find((t) => t.dataset.member === r.dataset.member);
        const fill = parse(getComputedStyle(r).fill);
        return {{
          name: r.dataset.member,
          share: box.width / bar.getBoundingClientRect().width,
          mark: text ? text.textContent : null,
          fits: text ? inside(text.getBoundingClientRect(), box) : null,
          ink: text ? contrast(parse(getComputedStyle(text).fill), fill) : null,
        }};
      }}),
      legend: [...row.querySelectorAll('.prob-legend [data-member]')].map((s) => ({{
        name: s.dataset.member,
        mark: s.querySelector('.mark').textContent,
        said: [...s.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)
          .map((n) => n.textContent).join(''),
      }})),
    }};
  }});
}}"""


def test_a_households_members_differ_by_more_than_colour(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    page = dashboard.page
    dashboard.view(f"households/{seeded.household}", "#conversions tbody tr")
    members = page.locator("#members .member").count()
    names = [f"Member {n}" for n in range(1, members + 1)]

    # Each member's activity curve has a dash of its own, and the legend and their card show
    # that curve's sample beside their name: read alike without colour.
    drawn = page.evaluate(CURVES_JS)
    assert [curve["name"] for curve in drawn["curves"]] == names
    dashes = [curve["dash"] for curve in drawn["curves"]]
    assert len(set(dashes)) == members, dashes
    assert drawn["legend"] == drawn["curves"]
    assert drawn["cards"] == drawn["curves"]

    # Each order's bar: a member's part carries their number wherever it has room, on ink that
    # reads on their colour, and their key in the legend beside it carries the same number.
    rows = page.evaluate(PARTS_JS)
    assert rows and all(row["bar"] for row in rows)
    numbered = 0
    for row in rows:
        assert [part["name"] for part in row["bar"]] == [key["name"] for key in row["legend"]]
        for part, key in zip(row["bar"], row["legend"], strict=True):
            current = part["name"] in names
            assert key["mark"] == (part["name"].removeprefix("Member ") if current else "")
            assert key["said"].startswith(part["name"] + " ")
            if current and part["share"] >= 0.1:
                assert part["mark"] == key["mark"], part
                assert part["fits"] and part["ink"] >= AA_TEXT, part
                numbered += 1
            elif not current:
                assert part["mark"] is None, part
    assert numbered
    # The numbers are for the eye: a screen reader hears each name and share once.
    legend = page.locator("#conversions .prob-legend").first.aria_snapshot()
    assert legend == "- text: " + " ".join(key["said"] for key in rows[0]["legend"])


def test_every_chart_names_its_series_and_their_newest_values(
    dashboard: Dashboard, seeded: Seeded
) -> None:
    page = dashboard.page
    dashboard.view("health", "#health-chart svg.chart")
    page.wait_for_selector("#health-lag .unit")
    # Each tile's chart says the value the tile shows (read in one go: it redraws each second).
    tiles = page.evaluate(
        """() => [...document.querySelectorAll('.stat[id^="health-"]')].map((t) => ({
          label: t.querySelector('.stat-label').textContent,
          value: t.querySelector('.stat-value').textContent,
          name: t.querySelector('svg.spark').getAttribute('aria-label'),
        }))"""
    )
    assert [tile["label"] for tile in tiles] == ["Ingest rate", "Worker lag", "Alert outbox"]
    for tile in tiles:
        assert tile["name"].startswith(f"{tile['label']}: {tile['value']} now; peak "), tile
    rate = r"(?:[\d,.]+ events\/s|unknown) now"  # the slash escaped for Playwright
    said = "; ".join(f"{name} {rate}" for name in ("Accepted", "Rejected", "Deduplicated"))
    named = re.compile(f"Collector events per second: {said}")
    assert page.locator("#health-chart").get_by_role("img", name=named).count() == 1

    dashboard.view(f"households/{seeded.household}", "#conversions tbody tr")
    cards = page.evaluate(
        """() => [...document.querySelectorAll('#members .member')].map((m) =>
          [m.querySelector('h3').textContent.trim(),
           ...m.querySelector('.member-head .muted').textContent.split(' · ')].join(', '))"""
    )
    activity = "Activity by local hour of day: " + "; ".join(cards)
    assert page.get_by_role("img", name=activity, exact=True).count() == 1
    for row in page.evaluate(PARTS_JS):
        name = "Member probabilities: " + "; ".join(key["said"] for key in row["legend"])
        assert page.get_by_role("img", name=name, exact=True).count() >= 1, name
