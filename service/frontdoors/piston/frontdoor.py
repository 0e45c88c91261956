"""The Piston door as a ``FrontDoor``: Piston v2's REST API and its interactive WebSocket.

It mounts one sub-application at ``/api/v2`` (Piston's routes under ``/api/v2/`` and
``/api/v2/piston/``) with its own error middleware (Piston's ``{"message"}``), authentication and
settings (``JUDGE_PISTON_*``). Its missions (kind ``piston``) hold their files in this process
only: a request waits for its mission, so a mission interrupted by a restart has nobody to
answer and fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from orchestrator.run.runner import MissionIO
from service.frontdoors.door import Callback, Core, DoorApi, door_app
from service.frontdoors.piston.appcore import CoreAdapter
from service.frontdoors.piston.connect import connect
from service.frontdoors.piston.core import PistonCore
from service.frontdoors.piston.http import piston_errors
from service.frontdoors.piston.openapi import paths
from service.frontdoors.piston.routes import PISTON, PistonState, add_routes
from service.frontdoors.piston.settings import PistonSettings
from service.frontdoors.piston.translate import KIND
from service.store import MissionRow

PREFIX = "/api/v2"


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


class PistonDoor:
    """Piston's API; one per app (its state: settings, limiter, compile cache, live slots)."""

    name = KIND
    migrations: Path | None = None

    def __init__(self) -> None:
        self.state: PistonState | None = None

    def settings_model(self) -> type[PistonSettings]:
        return PistonSettings

    def lifespan(self, core: Core) -> AbstractAsyncContextManager[None]:
        return _nothing()  # its compile cache and limiter are memory, owned by its state

    def mount(self, core: Core) -> list[tuple[str, web.Application]]:
        settings = core.door_settings(self.name)
        app = door_app(core, middlewares=[piston_errors])
        return [(PREFIX, self.sub_app(settings, CoreAdapter(core), app))]

    def sub_app(
        self, settings: PistonSettings, core: PistonCore, app: web.Application | None = None
    ) -> web.Application:
        """The door's routes and state over ``core``, on ``app`` (a new one by default)."""
        if app is None:
            app = web.Application(middlewares=[piston_errors])
        self.state = PistonState(settings, lambda: core)
        app[PISTON] = self.state
        add_routes(app, connect)
        return app

    def openapi(self) -> DoorApi | None:
        return DoorApi(
            paths=paths(PREFIX),
            tags=[{"name": "piston", "description": "Piston v2: runtimes, execute, connect."}],
            label="Piston v2",
        )

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return given  # None after a restart: the request that waited for it is gone

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        return None  # the request waiting for the mission reads its MissionIO

    def callback(self, row: MissionRow, result: dict[str, Any] | None) -> Callback | None:
        return None  # Piston has no callbacks: the request waits

    async def metrics(self) -> Iterable[Metric]:
        """The compile cache's hits, misses and size, and the interactive jobs running."""
        state = self.state
        if state is None:
            return []
        live = GaugeMetricFamily(
            "judge_piston_live_jobs", "Interactive Piston jobs (connect) running now"
        )
        live.add_metric([], state.live_running)
        out: list[Metric] = [live]
        cache = state.cache
        if cache is not None:
            for name, value, doc in (
                ("hits", cache.hits, "Executes that reused a compiled box"),
                ("misses", cache.misses, "Executes that compiled"),
            ):
                counter = CounterMetricFamily(f"judge_piston_compile_cache_{name}", doc)
                counter.add_metric([], value)
                out.append(counter)
            size = GaugeMetricFamily(
                "judge_piston_compile_cache_bytes", "Bytes the compile cache holds"
            )
            size.add_metric([], cache.size_bytes)
            out.append(size)
        return out


__all__ = ["KIND", "PREFIX", "PistonDoor"]
