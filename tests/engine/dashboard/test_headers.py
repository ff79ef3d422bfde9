"""The dashboard runs only its own files: a strict CSP on every response, no inline code in
its pages, and no script of ours that turns data into HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.dashboard.app import STATIC
from tests.engine.dashboard.dashboard_support import Client, HookedEngine, dashboard, log_in

# Sinks that parse a string as HTML or code; with them, a product name could become markup.
HTML_SINKS = re.compile(
    r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
    r"setAttribute\(\s*['\"](style|on\w+)|createContextualFragment|DOMParser"
)


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    engine = HookedEngine(data_dir)
    engine.page("laptop", 1_000, "/")
    engine.run()
    with dashboard(engine.config) as running:
        yield running
    engine.close()


def policy(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def test_every_dashboard_response_carries_a_strict_content_security_policy(
    client: Client,
) -> None:
    responses = [
        client.get("/dashboard/login"),
        client.get("/dashboard/", follow_redirects=False),
        client.get("/dashboard/api/live"),
        client.get("/dashboard/static/js/main.js"),
        client.get("/dashboard/static/missing.js"),
    ]
    log_in(client)
    responses += [client.get("/dashboard/"), client.get("/dashboard/api/stitches")]
    for response in responses:
        csp = policy(response.headers["content-security-policy"])
        assert csp["default-src"] == ["'none'"]
        for kind in ("script-src", "style-src", "connect-src", "img-src"):
            assert csp[kind] == ["'self'"], (response.url, kind)
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["base-uri"] == ["'none'"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "cache-control" in response.headers


def test_pages_and_data_are_never_cached_and_our_files_revalidate(client: Client) -> None:
    log_in(client)
    assert client.get("/dashboard/").headers["cache-control"] == "no-store"
    assert client.get("/dashboard/api/live").headers["cache-control"] == "no-store"
    script = client.get("/dashboard/static/js/main.js")
    assert script.headers["cache-control"] == "no-cache"
    assert script.headers["content-type"].startswith("text/javascript")


class InlineCode(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        self.found += [f"{tag} {name}=" for name in names if name == "style" or name[:2] == "on"]
        for name, value in attrs:
            if name in ("href", "src") and value and value.startswith(("javascript:", "http")):
                self.found.append(f"{tag} {name}={value}")


@pytest.mark.parametrize("page", ["index.html", "login.html"])
def test_the_pages_hold_no_inline_code_or_outside_file(page: str) -> None:
    parser = InlineCode()
    parser.feed((STATIC / page).read_text())
    assert parser.found == []


def test_no_script_of_ours_turns_a_string_into_html_or_code() -> None:
    scripts = sorted(STATIC.rglob("*.js"))
    assert len(scripts) > 10
    for script in scripts:
        text = script.read_text()
        assert not HTML_SINKS.search(text), (
            f"{script.relative_to(STATIC)}: {HTML_SINKS.search(text)}"
        )
        # No outside file or CDN; the SVG namespace is a name, not a download.
        outside = re.findall(r"https?://[^'\"\s]+", text)
        assert set(outside) <= {"http://www.w3.org/2000/svg"}, script
