"""The judge's ``Core`` as the Piston door uses it (``PistonCore``): a thin adapter, so that the
door's logic is tested over a fake of this small protocol."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from orchestrator.run.runner import MissionIO
from service.frontdoors.door import Core
from service.frontdoors.piston.live import LiveBox
from service.frontdoors.piston.runtimes import PistonRuntime, piston_runtimes
from service.frontdoors.piston.translate import KIND
from service.store import MissionRow

# The registry is refreshed in the background; a request looks again at most this often, so an
# image built a moment ago is found within seconds.
_REGISTRY_MAX_AGE_S = 5.0


class CoreAdapter:
    """``PistonCore`` over the judge's ``Core``."""

    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def max_body_bytes(self) -> int:
        return self._core.settings.max_body_bytes

    async def token_hash(self, token: str) -> str | None:
        return await self._core.authenticate(token)

    def take(self, token_hash: str) -> dict[str, str]:
        return self._core.limiter.take(token_hash)

    async def submit(self, tenant: str, mission: dict[str, Any], io: MissionIO) -> int:
        return await self._core.submit(tenant, mission, kind=KIND, io=io)

    async def cancel(self, mission_id: int) -> None:
        await self._core.cancel(mission_id)

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        return await self._core.wait_finished(mission_id)

    async def runtimes(self) -> Sequence[PistonRuntime]:
        registry = await self._core.languages.refresh(_REGISTRY_MAX_AGE_S)
        return piston_runtimes(registry.all())

    async def packages(self) -> Sequence[dict[str, Any]]:
        return [
            {"language": rt.language, "language_version": rt.version, "installed": True}
            for rt in await self.runtimes()
        ]

    def sandbox(self, image: str, memory_kib: int) -> AbstractAsyncContextManager[LiveBox]:
        return self._core.runtime.sandbox(image, memory_kib)


__all__ = ["CoreAdapter"]
