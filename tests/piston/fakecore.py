"""A core for the Piston door's HTTP tests: it records missions and ends them as told.

Fine for the protocol (routes, errors, auth, waiting); never for a claim about sandboxes, which
the tests against the real engine make.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from orchestrator.runner import MissionIO
from service.frontdoors.piston.frontdoor import PistonDoor
from service.frontdoors.piston.runtimes import PistonRuntime
from service.frontdoors.piston.settings import PistonSettings
from service.ratelimit import RateLimiter
from service.store import MissionRow
from tests.piston.fixtures import RUNTIMES

TOKEN = "secret-token"

Script = Callable[[dict[str, Any], MissionIO], dict[str, Any] | None]


def meta(**changes: Any) -> dict[str, Any]:
    doc = {
        "status": "",
        "message": "",
        "memory-usage": 1000,
        "cpu-time-usage": 12,
        "real-time-usage": 20,
        "exit-code": 0,
        "signal": 0,
    }
    doc.update(changes)
    return doc


def entry(m: dict[str, Any] | None = None, out: bytes = b"", err: bytes = b"") -> dict[str, Any]:
    return {
        "meta": m or meta(),
        "record": {
            "stdout": base64.b64encode(out).decode(),
            "stderr": base64.b64encode(err).decode(),
        },
    }


def echo_stdin(mission: dict[str, Any], io: MissionIO) -> dict[str, Any]:
    """Every execute succeeds; the run prints its stdin and its argv."""
    executes = mission["prepare"]["execute"]
    stdin = io.inputs.get(executes[-1]["stdin"], b"")
    entries = [entry() for _ in executes[:-1]]
    argv = " ".join(executes[-1]["command"]).encode()
    entries.append(entry(out=stdin + argv))
    return {"prepare": {"execute": entries}}


class FakeCore:
    """``PistonCore`` over memory: ``script`` gives each mission's result (None: it never
    ends)."""

    def __init__(self, script: Script = echo_stdin, rate_limit: int = 0) -> None:
        self.script = script
        self.missions: list[tuple[str, dict[str, Any], MissionIO]] = []
        self.cancelled: list[int] = []
        self.limiter = RateLimiter(rate_limit)
        self.runtime_list: Sequence[PistonRuntime] = RUNTIMES
        self._ended: dict[int, asyncio.Event] = {}
        self.max_body_bytes = 1 << 20

    async def token_hash(self, token: str) -> str | None:
        return "hash-of-" + token if token == TOKEN else None

    def take(self, token_hash: str) -> dict[str, str]:
        return self.limiter.take(token_hash)

    async def submit(self, tenant: str, mission: dict[str, Any], io: MissionIO) -> int:
        self.missions.append((tenant, mission, io))
        return len(self.missions)

    async def cancel(self, mission_id: int) -> None:
        self.cancelled.append(mission_id)

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        tenant, mission, io = self.missions[mission_id - 1]
        result = self.script(mission, io)
        if result is None:
            await asyncio.Event().wait()  # never ends
        return MissionRow(
            id=mission_id,
            token_hash=tenant,
            state="done",
            mission=mission,
            normalised=mission,
            result=result,
            error="",
            created_at=0.0,
            updated_at=0.0,
            runs=1,
            delivery_id="",
            callback_state="none",
            callback_attempts=0,
            callback_error="",
            kind="piston",
        )

    async def runtimes(self) -> Sequence[PistonRuntime]:
        return self.runtime_list

    async def packages(self) -> Sequence[dict[str, Any]]:
        return [{"language": "python", "language_version": "3.11.2", "installed": True}]


def app_with(core: FakeCore, **settings: Any) -> web.Application:
    """A root app with the door's sub-app mounted where the judge mounts it."""
    root = web.Application(client_max_size=core.max_body_bytes)
    door = PistonDoor()
    sub = door.sub_app(PistonSettings(_env_file=None, **settings), core)  # type: ignore[call-arg]
    root.add_subapp("/api/v2", sub)
    return root
