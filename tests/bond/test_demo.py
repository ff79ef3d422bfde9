"""`bond demo` and its storefront server: the snippet as the README gives it, the stack's values
filled in as pages are served, and the whole demo starting and stopping as a real process."""

from __future__ import annotations

import re
import signal
from dataclasses import replace
from pathlib import Path

import httpx

from bond.config import Config
from bond.demo import SITE_DIR, ShopServer, admin_token, fill_snippet
from conftest import ADMIN_TOKEN, ROOT, WRITE_KEY, BondProcess, free_port, wait_until


def readme_snippet() -> str:
    readme = (ROOT / "sdk" / "README.md").read_text()
    match = re.search(r"## Install.*?```html\n(.*?)```", readme, re.S)
    assert match, "sdk/README.md has no html snippet under '## Install'"
    return match.group(1)


def test_every_page_carries_the_readme_snippet_verbatim() -> None:
    pages = sorted(SITE_DIR.glob("*.html"))
    assert len(pages) >= 8
    for page in pages:
        assert readme_snippet() in page.read_text(), f"{page.name} changed the pasted snippet"


def test_served_pages_point_the_snippet_at_this_stack() -> None:
    shop = ShopServer(collector_url="http://127.0.0.1:9", write_key="key-123").start()
    try:
        page = httpx.get(f"{shop.url}/", timeout=5)
        script = httpx.get(f"{shop.url}/shop.js", timeout=5)
    finally:
        shop.stop()
    assert page.status_code == 200
    assert fill_snippet(
        readme_snippet(), collector_url="http://127.0.0.1:9", write_key="key-123"
    ) in (page.text)
    assert "bond.example.com" not in page.text and "YOUR_WRITE_KEY" not in page.text
    assert script.status_code == 200


def test_the_generated_admin_token_is_kept_for_the_next_run(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data")
    first, where = admin_token(config)
    assert admin_token(config) == (first, where)
    assert str(tmp_path) in where
    assert (tmp_path / "data" / "demo-admin-token").stat().st_mode & 0o077 == 0
    assert admin_token(replace(config, admin_token="set"))[0] == "set"


def test_bond_demo_serves_everything_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("port", "api-port", "shop-port")}
    args = ["demo", *(f"--{name}={port}" for name, port in ports.items())]
    for run in range(2):
        demo = BondProcess(args, tmp_path / "data").start()

        def up(url: str, demo: BondProcess = demo) -> bool:
            assert demo.proc is not None and demo.proc.poll() is None, demo.log
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(lambda: up(f"http://127.0.0.1:{ports['shop-port']}/"), timeout=30, what="shop")
        wait_until(lambda: up(f"http://127.0.0.1:{ports['port']}/sdk/v1/bond.js"), what="collector")
        if run == 0:
            event = {"type": "track", "event": "Hello", "anonymousId": "a-1", "messageId": "m-1"}
            sent = httpx.post(
                f"http://127.0.0.1:{ports['port']}/v1/batch",
                json={"writeKey": WRITE_KEY, "batch": [event]},
                timeout=5,
            )
            assert sent.status_code == 200
        # The second run carries on from the first run's state instead of starting over.
        wait_until(lambda: applied(ports["api-port"]) == 1, what="the worker to apply the event")
        page = httpx.get(f"http://127.0.0.1:{ports['shop-port']}/cart.html", timeout=5).text
        assert f"'http://127.0.0.1:{ports['port']}'" in page and repr(WRITE_KEY) in page
        assert demo.stop(signal.SIGTERM) == 0, demo.log
    assert sorted(p.name for p in (tmp_path / "data" / "logs").iterdir()) == [
        "api.log",
        "collector.log",
        "worker.log",
    ]


def applied(api_port: int) -> int | None:
    status = httpx.get(
        f"http://127.0.0.1:{api_port}/api/status",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=5,
    )
    return int(status.json()["offset"]) if status.status_code == 200 else None
