"""Requests a real Chromium makes to the collector: what passes its CORS checks, and whose
address and user agent the events get.

Here rather than beside the collector's other tests because they share the session's browser,
which runs Playwright's event loop from its first test to the end of the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from conftest import WRITE_KEY, Collector, wait_until
from tests.collector.test_analytics_js import RETRY, RETRY_HEADERS, stored
from tests.collector.test_server_side_requests import enrichment


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(tmp_path_factory.mktemp("browser-requests") / "data").start()
    yield collector
    collector.stop()


def test_a_retry_passes_chromiums_cors_check_and_is_stored(
    server: Collector, browser: Browser
) -> None:
    page = browser.new_page()
    try:
        # Another origin than the collector's own, on the loopback address like the collector:
        # Chromium refuses a public page's requests to a private address before any CORS.
        page.goto(f"http://localhost:{server.port}/")
        status = page.evaluate(
            """async ([url, headers, body]) =>
                (await fetch(url, {method: 'post', headers, body})).status""",
            [f"{server.url}/v1/t", RETRY_HEADERS, RETRY.decode()],
        )
    finally:
        page.close()
    assert status == 200
    assert stored(server, RETRY) == [
        ("track", "f287f6ad-e5e0-4119-93c7-1f96e080bd2b", None, "Checkout Started")
    ]


def test_chromiums_fetch_and_beacon_are_the_visitors_own(
    server: Collector, browser: Browser
) -> None:
    sent = [str(uuid.uuid4()) for _ in range(3)]
    page = browser.new_page()
    try:
        # A page of another origin, and one of the collector's own.
        page.goto(f"http://localhost:{server.port}/")
        agent = page.evaluate(
            """async ([url, key, ids]) => {
                const body = (id) => JSON.stringify({writeKey: key, batch: [
                    {type: 'track', event: 'Clicked', anonymousId: 'b-2', messageId: id}]});
                await fetch(url, {method: 'POST', body: body(ids[0])});
                navigator.sendBeacon(url, body(ids[1]));
                return navigator.userAgent;
            }""",
            [f"{server.url}/v1/batch", WRITE_KEY, sent],
        )
        page.goto(f"{server.url}/")
        page.evaluate(
            """([key, id]) => navigator.sendBeacon('/v1/batch', JSON.stringify({writeKey: key,
                batch: [{type: 'track', event: 'Clicked', anonymousId: 'b-2', messageId: id}]}))""",
            [WRITE_KEY, sent[2]],
        )
        stored = wait_until(
            lambda: len(found := enrichment(server, *sent)) == 3 and found, what="the beacons"
        )
    finally:
        page.close()

    assert stored == {message_id: ("127.0.0.0", agent) for message_id in sent}
