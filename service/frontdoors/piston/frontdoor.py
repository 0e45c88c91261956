"""The Piston door: Piston v2's REST API and its interactive WebSocket on the judge's engine.

``door`` is what ``service.app`` lists. It mounts one sub-application at ``/api/v2`` (Piston's
routes under ``/api/v2/`` and ``/api/v2/piston/``) with its own error middleware (Piston's
``{"message"}``), authentication and settings (``JUDGE_PISTON_*``). Its missions (kind
``piston``) hold their files in this process only: a request waits for its mission, so a
mission interrupted by a restart has nobody to answer and fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from orchestrator.mission import MissionCaps, normalise, parse_mission
from orchestrator.run.runner import MissionIO
from service.frontdoors.piston.connect import connect
from service.frontdoors.piston.core import PistonCore
from service.frontdoors.piston.http import piston_errors
from service.frontdoors.piston.openapi import paths
from service.frontdoors.piston.routes import PISTON, PistonState, add_routes
from service.frontdoors.piston.settings import PistonSettings
from service.frontdoors.piston.translate import KIND
from service.store import MissionRow

PREFIX = "/api/v2"


def normalised(mission: dict[str, Any], caps: MissionCaps) -> dict[str, Any]:
    """The echo of a door mission (checked like any submitted mission)."""
    return normalise(parse_mission(mission, caps))


class PistonDoor:
    """The ``FrontDoor`` of Piston's API."""

    name = KIND
    migrations = None

    def __init__(self) -> None:
        self.state: PistonState | None = None

    def settings_model(self) -> type[PistonSettings]:
        return PistonSettings

    def sub_app(self, settings: PistonSettings, core: PistonCore) -> web.Application:
        """The door's sub-application (its routes, errors and state) over ``core``."""
        app = web.Application(middlewares=[piston_errors])
        self.state = PistonState(settings, lambda: core)
        app[PISTON] = self.state
        add_routes(app, connect)
        return app

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return given  # None after a restart: the request that waited for it is gone

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        return None  # the request waiting for the mission reads its MissionIO

    def callback(self, row: MissionRow, result: dict[str, Any] | None) -> None:
        return None  # Piston has no callbacks

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

    def openapi_paths(self) -> dict[str, Any]:
        return paths(PREFIX)


door = PistonDoor()

__all__ = ["KIND", "PREFIX", "PistonDoor", "door", "normalised"]
