"""Serving the built browser SDK first-party: pinned versions and the latest 1.x.

The built files are committed under sdk/dist, so the collector serves them without node.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from bond.errors import NotFound
from bond.http import json_response

SDK_DIST = Path(__file__).resolve().parent.parent / "sdk" / "dist"
_FILE = re.compile(r"^bond-(\d+)\.(\d+)\.(\d+)\.min\.js$")
_PINNED_CACHE = "public, max-age=31536000, immutable"
_LATEST_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class SdkBuild:
    version: str
    name: str
    body: bytes

    @property
    def integrity(self) -> str:
        return "sha384-" + base64.b64encode(hashlib.sha384(self.body).digest()).decode()


def load_builds(dist: Path = SDK_DIST) -> dict[str, SdkBuild]:
    builds: dict[str, SdkBuild] = {}
    for path in sorted(dist.glob("bond-*.min.js")):
        match = _FILE.match(path.name)
        if match:
            version = ".".join(match.groups())
            builds[path.name] = SdkBuild(version, path.name, path.read_bytes())
    return builds


def latest(builds: dict[str, SdkBuild], major: int) -> SdkBuild | None:
    candidates = [b for b in builds.values() if b.version.split(".")[0] == str(major)]
    return max(candidates, key=lambda b: tuple(int(p) for p in b.version.split(".")), default=None)


class SdkFiles:
    def __init__(self, builds: dict[str, SdkBuild]) -> None:
        self.builds = builds

    async def pinned(self, request: Request) -> Response:
        build = self.builds.get(request.path_params["name"])
        if build is None:
            raise NotFound(f"no SDK file {request.path_params['name']}; see /sdk/integrity.json")
        return _script(build, _PINNED_CACHE)

    async def latest_v1(self, request: Request) -> Response:
        build = latest(self.builds, 1)
        if build is None:
            raise NotFound("the SDK is not built; run `npm run build`")
        return _script(build, _LATEST_CACHE)

    async def integrity(self, request: Request) -> Response:
        return json_response(
            [
                {"version": b.version, "path": f"/sdk/{b.name}", "integrity": b.integrity}
                for b in self.builds.values()
            ],
            200,
            {"Access-Control-Allow-Origin": "*"},
        )


def _script(build: SdkBuild, cache: str) -> Response:
    return Response(
        build.body,
        media_type="text/javascript",
        headers={
            "Cache-Control": cache,
            # Public code: any page may load it, including with SRI (which needs CORS).
            "Access-Control-Allow-Origin": "*",
            "X-Bond-Sdk-Version": build.version,
        },
    )
