"""The ZeroCloud door as a ``FrontDoor``: ``POST /v1/{account}`` runs a script or a ZeroVM image
and answers its stdout in the same request (its missions live only as long as that request)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import Metric
from pydantic_settings import BaseSettings

from orchestrator.run.runner import MissionIO
from service.frontdoors.door import Callback, Core, DoorApi, door_app
from service.frontdoors.zerocloud import execdoor, openapi
from service.frontdoors.zerocloud.routes import setup_zerocloud_routes
from service.http.errors import error_middleware
from service.store import MissionRow


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


class ZerocloudDoor:
    """The exec API; its missions (kind ``exec``) carry their files in this process."""

    name = execdoor.KIND
    migrations: Path | None = None

    def __init__(self) -> None:
        self._hooks = execdoor.ExecDoor()

    def settings_model(self) -> type[BaseSettings] | None:
        return None

    def lifespan(self, core: Core) -> AbstractAsyncContextManager[None]:
        return _nothing()

    def mount(self, core: Core) -> list[tuple[str, web.Application]]:
        app = door_app(core, middlewares=[error_middleware])
        setup_zerocloud_routes(app)
        return [("/v1", app)]

    def openapi(self) -> DoorApi | None:
        return openapi.openapi()

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return await self._hooks.started(row, given)

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        await self._hooks.finished(mission_id, state, result, io)

    def callback(self, row: MissionRow, result: dict[str, Any] | None) -> Callback | None:
        return None  # the request that submitted the mission waits for it

    async def metrics(self) -> Iterable[Metric]:
        return []
