"""The collector serves the committed SDK build first-party, pinned and as the latest 1.x."""

from __future__ import annotations

import base64
import hashlib

import httpx

from collector.sdk_files import SDK_DIST, latest, load_builds
from conftest import Collector


def test_pinned_and_latest_files_with_cache_headers_and_sri(collector: Collector) -> None:
    builds = load_builds()
    assert builds, f"no built SDK in {SDK_DIST}"
    newest = latest(builds, 1)
    assert newest is not None

    pinned = httpx.get(f"{collector.url}/sdk/{newest.name}")
    assert pinned.status_code == 200
    assert pinned.headers["content-type"].startswith("text/javascript")
    assert "immutable" in pinned.headers["cache-control"]
    assert pinned.content == (SDK_DIST / newest.name).read_bytes()

    moving = httpx.get(f"{collector.url}/sdk/v1/bond.js")
    assert moving.content == pinned.content
    assert "max-age=300" in moving.headers["cache-control"]

    published = httpx.get(f"{collector.url}/sdk/integrity.json").json()
    digest = base64.b64encode(hashlib.sha384(pinned.content).digest()).decode()
    assert {
        "version": newest.version,
        "path": f"/sdk/{newest.name}",
        "integrity": f"sha384-{digest}",
    } in published


def test_unknown_sdk_file_is_404_with_reason(collector: Collector) -> None:
    response = httpx.get(f"{collector.url}/sdk/bond-9.9.9.min.js")
    assert response.status_code == 404
    assert "integrity.json" in response.json()["reason"]
