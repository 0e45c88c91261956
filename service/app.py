"""The app factory: long-lived resources, each owned by one cleanup context under a typed key."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from orchestrator.errors import JudgeError
from orchestrator.languages import ImageInfo
from orchestrator.netpolicy import make_connector
from orchestrator.run.fetch import FetchLimits
from orchestrator.run.runner import MissionDeps
from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.pool import SandboxPool
from orchestrator.sandbox.sandbox import SandboxConfig
from service.api.events import EVENTS, setup_events
from service.api.metrics import setup_metrics
from service.api.missions import setup_routes
from service.api.openapi import setup_openapi_routes
from service.api.ops import SUPERVISOR_LABEL, setup_ops_routes
from service.frontdoors.piston import appcore as piston_core
from service.frontdoors.piston import frontdoor as piston
from service.frontdoors.piston.settings import PistonSettings
from service.frontdoors.webgme import executor
from service.frontdoors.webgme.blobs import BlobStore
from service.frontdoors.webgme.keys import BLOBS, EXECUTOR, RETENTION
from service.frontdoors.webgme.retention import RetentionSweeper
from service.frontdoors.webgme.routes import setup_webgme_routes
from service.frontdoors.zerocloud import execdoor
from service.frontdoors.zerocloud.keys import EXEC
from service.frontdoors.zerocloud.routes import setup_zerocloud_routes
from service.http.errors import error_middleware
from service.http.ratelimit import LIMITER, RateLimiter
from service.keys import HTTP, LANGUAGES, POOL, RUNTIME, SETTINGS, STORE, WORKERS
from service.languages import Languages, image_infos
from service.pipeline.callbacks import CallbackPolicy
from service.pipeline.wiring import MissionWorkers
from service.settings import Settings
from service.store import open_store
from service.web import setup_web_routes

log = logging.getLogger(__name__)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    # Nodes may start with their database: give it half a minute to answer.
    options = {"connect_s": 30.0} if s.database_url else {}
    store = await open_store(s.database_url, s.db_path, **options)
    app[STORE] = store
    yield
    await store.close()


async def blobs_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    blobs = BlobStore(app[STORE], s.data_dir / "blobs", quota_bytes=s.storage_quota_bytes)
    app[BLOBS] = blobs
    yield
    blobs.close()


async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    config = SandboxConfig(
        owner=s.sandbox_owner,
        box_kib=s.sandbox_box_kib,
        tmp_kib=s.sandbox_tmp_kib,
        pids_limit=s.sandbox_pids,
    )
    async with open_runtime(config, threads=s.engine_threads, check_engine=False) as runtime:
        # Sandboxes of this owner that exist now were left by a crash: nothing runs yet.
        try:
            containers, volumes = await runtime.sweep()
            if containers or volumes:
                log.info("removed %d containers and %d volumes left over", containers, volumes)
        except JudgeError as e:
            log.warning("Docker engine not reachable at start: %s", e)
        app[RUNTIME] = runtime
        yield


async def languages_ctx(app: web.Application) -> AsyncIterator[None]:
    """The language registry: built at start (empty while the engine does not answer) and
    refreshed every ``languages_refresh_s`` while the server runs (``service.languages``)."""
    adapter = app[RUNTIME].adapter

    async def list_images() -> list[ImageInfo]:
        return image_infos(await adapter.image_summaries(SUPERVISOR_LABEL))

    languages = Languages(list_images)
    await languages.refresh()
    app[LANGUAGES] = languages
    task = asyncio.create_task(
        languages.run_every(app[SETTINGS].languages_refresh_s), name="languages"
    )
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    pool = SandboxPool(app[RUNTIME], s.pool_sizes, cap=s.pool_max, concurrency=s.pool_concurrency)
    app[POOL] = pool
    pool.start()
    try:
        yield
    finally:
        await pool.stop()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    # One session for downloads and callbacks, with the address policy on its connector.
    connector = make_connector(app[SETTINGS].address_policy)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[HTTP] = session
        yield


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    deps = MissionDeps(
        runtime=app[RUNTIME],
        session=app[HTTP],
        default_image=s.default_image,
        fetch_limits=FetchLimits(block_private=s.address_policy),
        files_budget_bytes=s.mission_files_bytes,
        pool=app[POOL],
        max_task_parallel=s.max_task_parallel,
    )
    workers = MissionWorkers(
        app[STORE],
        deps,
        app[HTTP],
        max_running=s.max_running,
        max_queued=s.max_queued,
        callback_policy=CallbackPolicy(
            attempts=s.callback_attempts,
            initial_wait_s=s.callback_initial_wait_s,
            max_wait_s=s.callback_max_wait_s,
            timeout_s=s.callback_timeout_s,
            secret=s.callback_secret,
            block_private=s.address_policy,
        ),
        callback_concurrency=s.callback_concurrency,
        blob_reader_for=app[BLOBS].reader_for,
        owner=s.sandbox_owner,
        lease_s=s.lease_s,
        images=lambda: app[LANGUAGES].images,
    )
    app[WORKERS] = workers
    workers.add_listener(app[EVENTS].publish)
    # The front doors' missions run on these workers; they must be known before resuming.
    app[EXECUTOR] = executor.ExecutorDoor(app[STORE], app[BLOBS], workers)
    app[EXEC] = execdoor.ExecDoor()
    workers.register(executor.KIND, app[EXECUTOR])
    workers.register(execdoor.KIND, app[EXEC])
    workers.register(piston.KIND, piston.door)
    try:
        await workers.start()
        yield
    finally:
        await workers.stop(s.shutdown_grace_s)
        await app[EXECUTOR].close()


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Apply the retention period every ``retention_sweep_s`` while the server runs."""
    s = app[SETTINGS]
    sweeper = RetentionSweeper(app[BLOBS], s.retention_s)
    app[RETENTION] = sweeper
    task = asyncio.create_task(sweeper.run_every(s.retention_sweep_s), name="retention")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources start when it starts and stop in reverse order."""
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[LIMITER] = RateLimiter(settings.rate_limit)
    setup_events(app)
    setup_metrics(app)
    app.cleanup_ctx.extend(
        [
            store_ctx,
            blobs_ctx,
            runtime_ctx,
            languages_ctx,
            pool_ctx,
            http_ctx,
            workers_ctx,
            retention_ctx,
        ]
    )
    setup_routes(app)
    setup_ops_routes(app)
    setup_webgme_routes(app)
    setup_zerocloud_routes(app)
    app.add_subapp(piston.PREFIX, piston.door.sub_app(PistonSettings(), piston_core.AppCore(app)))
    setup_openapi_routes(app)
    setup_web_routes(app)
    return app
