"""Helpers for mission tests: building missions, running them, reading their results."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from orchestrator.mission import parse_mission
from orchestrator.run.runner import MissionDeps, PhaseTimes, run_mission

CALLBACK = "https://callback.example/judge"


def sh(script: str, **fields: Any) -> dict[str, Any]:
    """An execute running ``sh -c script`` with the given extra fields."""
    return {"command": ["sh", "-c", script], **fields}


def mission(**parts: Any) -> dict[str, Any]:
    """A mission dict with a callback URL and the given stages (``return`` may be overridden)."""
    return {"return": {"url": CALLBACK}, **parts}


async def run(
    deps: MissionDeps, data: dict[str, Any], **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate ``data`` as a submission would, then run it; returns (normalised, result)."""
    return await run_mission(parse_mission(data), deps, **kwargs)


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def stdout_of(entry: dict[str, Any]) -> str:
    """The recorded stdout of a result execute entry, decoded as text."""
    return base64.b64decode(entry["record"]["stdout"]).decode()


def statuses(stage: dict[str, Any]) -> list[str]:
    return [e["meta"]["status"] for e in stage["execute"]]


def assert_ok(entry: dict[str, Any]) -> None:
    """The execute ran and all went well."""
    meta = entry["meta"]
    assert (meta["status"], meta["message"]) == ("", ""), entry


class FileServer:
    """A local HTTP server serving ``files`` at ``/files/<name>``; other names are a 404."""

    NOT_FOUND = b"no such file here"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/files/{name}", self._serve)
        self.server: TestServer | None = None

    async def _serve(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits.append(name)
        if name not in self.files:
            return web.Response(status=404, body=self.NOT_FOUND)
        return web.Response(body=self.files[name], content_type="application/octet-stream")

    def url(self, name: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(f"/files/{name}"))


__all__ = [
    "CALLBACK",
    "FileServer",
    "PhaseTimes",
    "assert_ok",
    "b64",
    "mission",
    "run",
    "sh",
    "statuses",
    "stdout_of",
]
