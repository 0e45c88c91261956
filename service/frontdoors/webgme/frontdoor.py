"""The WebGME door as a ``FrontDoor``: its resources (the blob store, the executor, the retention
sweeper), its routes under ``/rest``, its OpenAPI part and its retention metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, Metric

from orchestrator.run.runner import MissionIO
from service.frontdoors.door import Callback, Core, DoorApi, door_app
from service.frontdoors.webgme import executor, openapi
from service.frontdoors.webgme.blobs import BlobStore
from service.frontdoors.webgme.keys import BLOBS, EXECUTOR, REPO, RETENTION
from service.frontdoors.webgme.repo import WebgmeRepo
from service.frontdoors.webgme.retention import RetentionSweeper
from service.frontdoors.webgme.routes import setup_webgme_routes
from service.frontdoors.webgme.settings import WebgmeSettings
from service.http.errors import error_middleware
from service.store import MissionRow


class WebgmeDoor:
    """Blobs and the executor API; its missions (kind ``executor``) are its jobs'."""

    name = executor.KIND
    migrations: Path | None = Path(__file__).parent / "sql"  # blobs, jobs and their output

    def __init__(self) -> None:
        self._executor: executor.ExecutorDoor | None = None
        self._retention: RetentionSweeper | None = None

    def settings_model(self) -> type[WebgmeSettings]:
        return WebgmeSettings  # the storage quota; the retention period is the judge's

    @asynccontextmanager
    async def _lifespan(self, core: Core) -> AsyncIterator[None]:
        s = core.settings
        repo = WebgmeRepo(core.sql)
        blobs = BlobStore(
            repo,
            s.data_dir / "blobs",
            contents_in_database=core.store.blob_contents,
            quota_bytes=core.door_settings(self.name).storage_quota_bytes,
        )
        # Missions of the mission API read ``blob:`` files from this door's store, as their token.
        core.serve_blob_urls(blobs.reader_for)
        self._executor = executor.ExecutorDoor(repo, blobs, core)
        self._retention = RetentionSweeper(blobs, s.retention_s)
        core.put(REPO, repo)
        core.put(BLOBS, blobs)
        core.put(EXECUTOR, self._executor)
        core.put(RETENTION, self._retention)
        task = asyncio.create_task(self._retention.run_every(s.retention_sweep_s), name="retention")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self._executor.close()
            blobs.close()

    def lifespan(self, core: Core) -> AbstractAsyncContextManager[None]:
        return self._lifespan(core)

    def mount(self, core: Core) -> list[tuple[str, web.Application]]:
        app = door_app(core, middlewares=[error_middleware])
        setup_webgme_routes(app)
        return [("/rest", app)]

    def openapi(self) -> DoorApi | None:
        return openapi.openapi()

    def _hooks(self) -> executor.ExecutorDoor:
        if self._executor is None:
            raise RuntimeError("the WebGME door is not started")
        return self._executor

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return await self._hooks().started(row, given)

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        await self._hooks().finished(mission_id, state, result, io)

    def callback(self, row: MissionRow, result: dict[str, Any] | None) -> Callback | None:
        return None  # WebGME's clients poll their jobs

    async def metrics(self) -> Iterable[Metric]:
        return [] if self._retention is None else list(_retention(self._retention))


def _retention(sweeper: RetentionSweeper) -> Iterator[Metric]:
    """What the retention period freed since the server started."""
    freed_bytes, freed_files = sweeper.freed
    yield CounterMetricFamily(
        "judge_retention_freed_bytes", "Bytes of blob files deleted by retention.", freed_bytes
    )
    yield CounterMetricFamily(
        "judge_retention_freed_files", "Blob files deleted by retention.", freed_files
    )
    removed = CounterMetricFamily(
        "judge_retention_removed", "Records removed by retention, by kind.", labels=["what"]
    )
    for what in ("jobs", "outputs", "missions", "blobs"):
        removed.add_metric([what], sweeper.removed[what])
    yield removed
    yield CounterMetricFamily("judge_retention_sweeps", "Retention sweeps run.", sweeper.sweeps)
