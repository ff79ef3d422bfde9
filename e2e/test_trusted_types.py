"""The snippet on pages whose Content-Security-Policy enforces Trusted Types, in Chromium.

With `require-trusted-types-for 'script'` Chromium refuses a plain string as a script's URL, so
the snippet hands the SDK's URL over through a policy of its own named `bond`, which the page's
`trusted-types` directive must allow. Pages are served over http://127.0.0.1 with the snippet
as sdk/README.md gives it and the policy in a header; the SDK comes from a real collector, and
what arrived is read from the collector's SQLite event log.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request

from conftest import Collector
from e2e.test_sdk_browser import Site, names, snippet, stored, wait_stored
from e2e.test_sdk_browser import site as site  # the fixture: pages on a free port

NONCE = "r4nd0m"
ENFORCE = "require-trusted-types-for 'script'"
# What Chromium logs when a page's `trusted-types` directive does not name the snippet's policy.
REFUSED_POLICY = (
    "Creating a TrustedTypePolicy named 'bond' violates the following Content Security policy"
    ' directive: "trusted-types app". The action has been blocked.'
)

# The site's own script after the snippet: it renders through its own policy, as a site that
# enforces Trusted Types does, and calls Bond before the SDK has arrived.
PAGE_SCRIPT = """<script>
const app = trustedTypes.createPolicy('app', {createHTML: (html) => html});
document.querySelector('#main').innerHTML = app.createHTML('<b id=rendered>Welcome</b>');
bond.track('Trusted', {n: 1});
</script>"""


def page(site: Site, name: str, host: str, csp: str = "", nonce: bool = False) -> str:
    """A page with the snippet in its head and PAGE_SCRIPT in its body; returns its URL."""
    html = (
        f"<!doctype html><html><head><title>{name}</title>{snippet(host)}</head>"
        f"<body><main id=main></main>{PAGE_SCRIPT}</body></html>"
    )
    if nonce:
        html = html.replace("<script>", f"<script nonce={NONCE}>")
    (site.root / name).write_text(html)
    if csp:
        site.csp[name] = csp
    return f"{site.url}/{name}"


class Tab:
    """A page, what its console said, the errors it threw and the scripts it requested."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []
        self.scripts: list[str] = []
        page.on("console", lambda m: self.console.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._requested)

    def _requested(self, request: Request) -> None:
        if request.resource_type == "script":
            self.scripts.append(request.url)

    def refusals(self) -> list[str]:
        """What the browser refused under the page's Content-Security-Policy."""
        self.page.evaluate("0")  # a round trip delivers the console messages Playwright holds
        said = self.console + self.errors
        return [text for text in said if re.search("content security policy|trusted", text, re.I)]


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context()
    yield Tab(context.new_page())
    context.close()


def inline_hashes(path: Path) -> str:
    """The CSP sources that allow each inline script of the page by its hash."""
    scripts = re.findall(r"<script>(.*?)</script>", path.read_text(), re.S)
    assert len(scripts) == 2, "the snippet and the page's own script"
    digests = (base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts)
    return " ".join(f"'sha256-{d}'" for d in digests)


def delivered(collector: Collector, tab: Tab) -> None:
    """The page rendered, and its page view and track reached the collector."""
    assert tab.page.text_content("#rendered") == "Welcome"
    events = wait_stored(collector, lambda evs: len(evs) >= 2, "the page view and the track")
    assert names(events) == ["page", "Trusted"]
    assert events[1]["properties"] == {"n": 1}


@pytest.mark.parametrize("allow", ["hash", "nonce"])
def test_a_page_enforcing_trusted_types_that_allows_bond_gets_its_events(
    collector: Collector, site: Site, tab: Tab, allow: str
) -> None:
    url = page(site, "strict.html", collector.url, nonce=allow == "nonce")
    if allow == "hash":  # each inline script by its hash, and the collector for the SDK
        scripts = f"{inline_hashes(site.root / 'strict.html')} {collector.url}"
    else:  # the nonce, which 'strict-dynamic' extends to the script the snippet adds
        scripts = f"'nonce-{NONCE}' 'strict-dynamic'"
    site.csp["strict.html"] = (
        f"default-src 'none'; script-src {scripts}; connect-src {collector.url}; "
        f"{ENFORCE}; trusted-types bond app"
    )
    tab.page.goto(url)
    delivered(collector, tab)
    assert tab.refusals() == []
    assert tab.page.evaluate("typeof bond.version") == "string", "the SDK replaced the stub"


@pytest.mark.parametrize(
    "csp",
    ["", "trusted-types app"],
    ids=["no policy", "policy names limited but not enforced"],
)
def test_a_page_that_does_not_enforce_trusted_types_works_as_before(
    collector: Collector, site: Site, tab: Tab, csp: str
) -> None:
    # Chromium has window.trustedTypes on every page. Where the page's `trusted-types` does not
    # name `bond`, creating the policy throws and the snippet falls back to the plain URL.
    tab.page.goto(page(site, "plain.html", collector.url, csp))
    delivered(collector, tab)
    refused = tab.refusals()
    if csp:
        assert refused == [REFUSED_POLICY]
    else:
        assert refused == []


def test_a_page_enforcing_trusted_types_without_bond_keeps_working_and_says_why(
    collector: Collector, site: Site, tab: Tab
) -> None:
    # Without `bond` in `trusted-types` (and no default policy to take the plain URL), nothing
    # may load the SDK: the page's own scripts still run, calls to Bond are queued and harmless,
    # and the console names the policy the owner has to allow.
    csp = f"script-src 'nonce-{NONCE}' 'strict-dynamic'; {ENFORCE}; trusted-types app"
    tab.page.goto(page(site, "missing.html", collector.url, csp, nonce=True))
    assert tab.page.text_content("#rendered") == "Welcome"
    queued = tab.page.evaluate("bond.q.map((call) => [...call])")
    assert queued == [["track", "Trusted", {"n": 1}]], "the page's call waits in the stub"
    assert [u for u in tab.scripts if "/sdk/" in u] == [], "the SDK was never requested"
    assert stored(collector) == []
    assert tab.refusals() == [
        REFUSED_POLICY,
        "This document requires 'TrustedScriptURL' assignment. The action has been blocked.",
        "Failed to set the 'src' property on 'HTMLScriptElement': This document requires"
        " 'TrustedScriptURL' assignment.",
    ]
