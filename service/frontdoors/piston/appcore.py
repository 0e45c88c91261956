"""The Piston door's core, built from the running app's resources.

(Provisional wiring: replaced by the ``Core`` every door receives once the FrontDoor interface
is on main.)
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web

from orchestrator.mission import normalise, parse_mission
from orchestrator.run.runner import MissionIO
from service.frontdoors.piston.live import LiveBox
from service.frontdoors.piston.runtimes import PistonRuntime, piston_runtimes
from service.frontdoors.piston.translate import KIND
from service.http.ratelimit import LIMITER
from service.keys import LANGUAGES, RUNTIME, SETTINGS, STORE, WORKERS
from service.store import MissionRow, hash_token

_REGISTRY_MAX_AGE_S = 5.0


class AppCore:
    """``PistonCore`` over the root application's resources (read when first used)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    @property
    def max_body_bytes(self) -> int:
        return self._app[SETTINGS].max_body_bytes

    async def token_hash(self, token: str) -> str | None:
        digest = hash_token(token)
        allowed = False
        for configured in self._app[SETTINGS].tokens:
            allowed |= hmac.compare_digest(hash_token(configured), digest)
        if allowed or await self._app[STORE].tokens.token_active(digest):
            return digest
        return None

    def take(self, token_hash: str) -> dict[str, str]:
        return self._app[LIMITER].take(token_hash)

    async def submit(self, tenant: str, mission: dict[str, Any], io: MissionIO) -> int:
        caps = self._app[SETTINGS].mission_caps
        echo = normalise(parse_mission(mission, caps))
        return await self._app[WORKERS].submit(tenant, mission, echo, kind=KIND, io=io)

    async def cancel(self, mission_id: int) -> None:
        await self._app[WORKERS].cancel(mission_id)

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        return await self._app[WORKERS].wait_finished(mission_id)

    async def runtimes(self) -> Sequence[PistonRuntime]:
        # The registry is refreshed in the background; an image built a moment ago is seen
        # within a few seconds.
        registry = await self._app[LANGUAGES].refresh(_REGISTRY_MAX_AGE_S)
        return piston_runtimes(registry.all())

    def sandbox(self, image: str, memory_kib: int) -> AbstractAsyncContextManager[LiveBox]:
        return self._app[RUNTIME].sandbox(image, memory_kib)

    async def packages(self) -> Sequence[dict[str, Any]]:
        return [
            {"language": rt.language, "language_version": rt.version, "installed": True}
            for rt in await self.runtimes()
        ]
