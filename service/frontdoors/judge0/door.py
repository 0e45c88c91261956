"""The Judge0 door as a ``FrontDoor``: its sub-application at ``/judge0``, its missions' hooks,
its tables (``sql/``), its callbacks (through the judge's durable delivery), its metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import Metric

from orchestrator.languages import LanguageRegistry
from orchestrator.run.runner import MissionIO
from service.frontdoors.door import Callback, Core, DoorApi, door_app
from service.frontdoors.judge0 import languages as langs
from service.frontdoors.judge0 import openapi, plan
from service.frontdoors.judge0.metrics import cache_metrics
from service.frontdoors.judge0.ports import Judge0Ports
from service.frontdoors.judge0.repo import Judge0Repo, SubmissionRow
from service.frontdoors.judge0.request import Judge0Config
from service.frontdoors.judge0.routes import judge0_errors, routes
from service.frontdoors.judge0.settings import Judge0Settings
from service.frontdoors.judge0.submissions import BATCH_CALLBACK, KIND, Submissions
from service.pipeline.callbacks import url_refusal
from service.pipeline.compilecache import CompileCache
from service.pipeline.intake import DoorRows
from service.pipeline.running import EndRows
from service.store import MissionRow
from service.store.records import hash_token

log = logging.getLogger(__name__)

ENDED = frozenset({"done", "cancelled", "failed"})
CALLBACK_WAIT_S = 30.0  # how long a delivery waits for the outcome being stored


class Judge0Door:
    """The Judge0 CE 1.13.1 API; one per application."""

    name = KIND
    migrations: Path | None = Path(__file__).parent / "sql"

    def __init__(self) -> None:
        self._core: Core | None = None
        self._submissions: Submissions | None = None
        self._table: tuple[LanguageRegistry, dict[int, langs.Judge0Language]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.cache = CompileCache()

    # -- what the judge asks of a door -----------------------------------------------------------

    def settings_model(self) -> type[Judge0Settings]:
        return Judge0Settings

    def mount(self, core: Core) -> list[tuple[str, web.Application]]:
        self._core = core
        core.put(JUDGE0_DOOR, self)
        app = door_app(core, middlewares=[judge0_errors])
        routes(app, self._ports())
        return [("/judge0", app)]

    def openapi(self) -> DoorApi:
        return DoorApi(
            paths=openapi.paths(),
            tags=[openapi.TAG],
            security_schemes=openapi.SECURITY_SCHEMES,
            label="Judge0 CE",
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, core: Core) -> AsyncIterator[None]:
        self._core = core
        self._loop = asyncio.get_running_loop()
        s = self.settings
        self.cache = CompileCache(max_bytes=s.compile_cache_bytes, ttl_s=s.compile_cache_ttl_s)
        self._submissions = Submissions(
            Judge0Repo(core.sql),
            self.cache,
            self.config,
            self.languages,
            core.mission,
            on_end=self._ended,
        )
        sweeper = asyncio.create_task(self._sweep_every(), name="judge0-retention")
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return await self.submissions.started(row, given)

    async def ending(
        self, row: MissionRow, state: str, result: dict[str, Any], io: MissionIO
    ) -> EndRows | None:
        """A submission's outcome is written in the transaction storing its mission's end."""
        return await self.submissions.ending(row.id, state, result, io)

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        await self.submissions.finished(mission_id, state, result, io)

    def callback(self, row: MissionRow, result: dict[str, Any] | None) -> Callback | None:
        """Judge0's ``PUT`` of a submission (or of a batch) with a callback URL.

        Called in a thread. When the mission ends, to know whether one is due: the mission's
        payload says so (its body is not read then). When it is delivered: the body is the
        submission as it ended, read from the door's rows on the loop (waiting for the outcome
        if the delivery starts before it is stored)."""
        payload = row.mission.get("return", {}).get("payload", {})
        if not payload.get(BATCH_CALLBACK) and not payload.get("callback_url"):
            return None
        if row.state not in ENDED:
            url = payload.get("callback_url") or "http://judge0.invalid/batch"
            return Callback(str(url), b"", "application/json", method="PUT")
        loop = self._loop
        if loop is None:
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a thread, as the judge calls it: ask the loop
        else:
            return None  # never block the loop
        future = asyncio.run_coroutine_threadsafe(
            self.submissions.callback_of(row, wait_s=CALLBACK_WAIT_S), loop
        )
        got = future.result(timeout=CALLBACK_WAIT_S + 10)
        if got is None:
            return None
        url, body = got
        return Callback(url, body, "application/json", method="PUT")

    async def metrics(self) -> Iterable[Metric]:
        return cache_metrics(self.cache)

    # -- the door's own --------------------------------------------------------------------------

    @property
    def core(self) -> Core:
        if self._core is None:
            raise RuntimeError("the Judge0 door is not mounted")
        return self._core

    @property
    def settings(self) -> Judge0Settings:
        settings: Judge0Settings = self.core.door_settings(KIND)
        return settings

    @property
    def submissions(self) -> Submissions:
        if self._submissions is None:
            raise RuntimeError("the Judge0 door has not started")
        return self._submissions

    def languages(self) -> dict[int, langs.Judge0Language]:
        """The served ids, rebuilt when the registry changed (images came or went)."""
        registry = self.core.languages.registry
        if self._table is None or self._table[0] is not registry:
            self._table = (registry, langs.served(registry))
        return self._table[1]

    def config(self) -> Judge0Config:
        s = self.core.settings
        return self.settings.config(
            max_queue_size=s.max_queued,
            callbacks_max_tries=s.callback_attempts,
            callbacks_timeout=s.callback_timeout_s,
        )

    async def _ended(self, row: SubmissionRow) -> None:
        """A submission ended: the last of a batch with a callback queues the (empty) mission
        whose end carries the batch's callback through the durable delivery."""
        if not row.batch:
            return
        ended = await self.submissions.batch_ended(row.batch)
        if ended is None:
            return
        mission = plan.batch_callback_mission(row.batch, self.core.settings.default_image)
        try:
            await self.core.submit(row.token_hash, mission, kind=KIND)
        except Exception:
            log.exception("judge0 batch %s: its callback cannot be queued", row.batch)

    async def _sweep_every(self) -> None:
        """Forget submissions after the judge's retention period, as it forgets missions."""
        s = self.core.settings
        while True:
            await asyncio.sleep(s.retention_sweep_s)
            try:
                gone = await self.submissions.repo.sweep(time.time() - s.retention_s)
                if gone:
                    log.info("judge0: %d submissions past the retention period forgotten", gone)
            except Exception:
                log.exception("judge0: the retention sweep failed")

    def _ports(self) -> Judge0Ports:
        core = self.core

        async def submit(
            token_hash: str,
            mission: dict[str, Any],
            normalised: dict[str, Any],
            kind: str,
            io: MissionIO | None,
            rows: DoorRows,
        ) -> int:
            return await core.submit(
                token_hash, mission, kind=kind, io=io, normalised=normalised, rows=rows
            )

        async def queued() -> int:
            return await core.store.missions.queued_count()

        async def running() -> int:
            return sum((await core.store.missions.running_by_owner()).values())

        return Judge0Ports(
            settings=lambda: self.settings,
            anonymous_tenant=hash_token("judge0:anonymous"),
            authenticate=core.authenticate,
            rate_limit=lambda token_hash: core.limiter.take(token_hash),
            submit=submit,
            single_node=lambda: not core.store.clustered,
            mission=core.mission,
            wait_synchronously=core.wait_synchronously,
            callback_refusal=lambda url: _callback_refusal(url, core.settings.address_policy),
            mission_caps=lambda: core.settings.mission_caps,
            languages=self.languages,
            config=self.config,
            queued=queued,
            running=running,
            max_running=lambda: core.settings.max_running,
            submissions_of=lambda: self.submissions,
        )


def _callback_refusal(url: str, policy: Any) -> str | None:
    if not url.startswith(("http://", "https://")):
        return "must be an http or https URL"
    return url_refusal(url, policy)


JUDGE0_DOOR = web.AppKey("judge0_door", Judge0Door)
"""The app's Judge0 door (tests read its compile cache)."""
