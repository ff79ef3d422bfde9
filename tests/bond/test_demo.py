"""`bond demo` and its storefront server: the snippet as the README gives it, the stack's values
filled in as pages are served, and the whole demo starting and stopping as a real process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from bond.config import Config, load
from bond.demo import SITE_DIR, ShopServer, admin_token, fill_snippet, with_sample_rules
from conftest import ADMIN_TOKEN, ROOT, WRITE_KEY, BondProcess, free_port, wait_until
from tests.bond.network_support import ipv6_loopback


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


def up(url: str, demo: BondProcess) -> bool:
    assert demo.proc is not None and demo.proc.poll() is None, demo.log
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def applied(api_port: int) -> int | None:
    status = httpx.get(
        f"http://127.0.0.1:{api_port}/api/status",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=5,
    )
    return int(status.json()["offset"]) if status.status_code == 200 else None


def test_bond_demo_refuses_a_port_another_server_answers_on(tmp_path: Path) -> None:
    # The collector's readiness check took the other server's answer for its own: the demo
    # printed that server's address as its collector, then died.
    other = ShopServer(collector_url="http://127.0.0.1:9", write_key="k").start()
    try:
        taken = other.url.rpartition(":")[2]
        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "bond.cli",
                "--data-dir",
                str(tmp_path / "data"),
                "demo",
                f"--port={taken}",
                f"--api-port={free_port()}",
                f"--shop-port={free_port()}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        other.stop()
    assert demo.returncode == 1
    assert "Bond demo on" not in demo.stdout
    assert f"port {taken} is already in use" in demo.stderr and "(--port)" in demo.stderr


def test_bond_demo_refuses_one_port_for_two_servers(tmp_path: Path) -> None:
    # The collector answered the read API's readiness check: the demo printed its banner, and
    # then died of the read API's failure.
    port = free_port()
    argv = ["demo", f"--port={port}", f"--api-port={port}", f"--shop-port={free_port()}"]
    demo = subprocess.run(
        [sys.executable, "-m", "bond.cli", "--data-dir", str(tmp_path / "data"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert demo.returncode == 1
    assert "Bond demo on" not in demo.stdout
    assert "three different ports" in demo.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_bond_demo_on_an_ipv6_address_serves_its_urls_in_brackets(tmp_path: Path) -> None:
    # The storefront could not listen on ::1 at all, and the addresses it would have printed
    # and pasted into the snippet (http://::1:PORT) were no URLs.
    ports = {name: free_port() for name in ("port", "api-port", "shop-port")}
    args = ["demo", "--host", "::1", *(f"--{name}={port}" for name, port in ports.items())]
    demo = BondProcess(args, tmp_path / "data").start()
    try:
        shop = f"http://[::1]:{ports['shop-port']}/"
        wait_until(lambda: up(shop, demo), timeout=30, what="the storefront on ::1")
        page = httpx.get(shop, timeout=5).text
    finally:
        assert demo.stop(signal.SIGTERM) == 0, demo.log
    assert f"'http://[::1]:{ports['port']}'" in page


def test_the_demo_dashboard_reads_the_collector_on_the_demo_port(tmp_path: Path) -> None:
    # With --port, the read API looked for the collector's metrics on the default port 8000,
    # and the health view said "unknown" for as long as the demo ran.
    ports = {name: free_port() for name in ("port", "api-port", "shop-port")}
    args = ["demo", *(f"--{name}={port}" for name, port in ports.items())]
    demo = BondProcess(args, tmp_path / "data").start()
    base = f"http://127.0.0.1:{ports['api-port']}"
    try:
        # The storefront opens once the collector and the read API are up.
        wait_until(lambda: up(f"http://127.0.0.1:{ports['shop-port']}/", demo), timeout=30)
        with httpx.Client(base_url=base, timeout=5) as browser:
            form = browser.get("/dashboard/login").text
            form_token = form.split('name="form" value="', 1)[1].split('"', 1)[0]
            browser.post(
                "/dashboard/login",
                data={"form": form_token, "token": ADMIN_TOKEN},
                headers={"Origin": base},
            )

            def collector_seen() -> bool:
                health = browser.get("/dashboard/api/health")
                assert health.status_code == 200, health.text
                return health.json()["now"]["collector"] is not None

            wait_until(collector_seen, timeout=15, interval=0.2, what="the collector's metrics")
    finally:
        assert demo.stop(signal.SIGTERM) == 0, demo.log


def test_the_demo_adds_sample_alert_rules_only_to_a_configuration_without_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOND_CONFIG", raising=False)
    data_dir = tmp_path / "data"
    own = tmp_path / "own.toml"
    own.write_text('admin_token = "from-the-file"\n[alerts]\ncurrency = "USD"\n')
    path, config = with_sample_rules(load(own, data_dir=data_dir), str(own))
    assert path == str(data_dir.resolve() / "demo-bond.toml")
    assert [rule.name for rule in config.alerts.rules] == [
        "demo: buyer identified",
        "demo: large order",
    ]
    # The user's own settings stay, and the copy of their secrets is the owner's alone.
    assert config.admin_token == "from-the-file" and config.alerts.currency == "USD"
    assert Path(path).stat().st_mode & 0o077 == 0

    own.write_text('[[alerts.rules]]\nname = "mine"\nkind = "identified"\nthreshold = 9\n')
    mine = load(own, data_dir=data_dir)
    assert with_sample_rules(mine, str(own)) == (str(own), mine)
