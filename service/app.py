"""The app factory: long-lived resources, each owned by one cleanup context under a typed key,
and the one list of front doors (``DOORS``): nothing else in the core names a door."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from pydantic_settings import BaseSettings

from orchestrator.errors import JudgeError
from orchestrator.languages import ImageInfo
from orchestrator.netpolicy import make_connector
from orchestrator.run.fetch import FetchLimits
from orchestrator.run.runner import MissionDeps
from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.pool import SandboxPool
from orchestrator.sandbox.sandbox import SandboxConfig
from service.api import openapi as api_openapi
from service.api.events import EVENTS, setup_events
from service.api.metrics import setup_metrics
from service.api.missions import setup_routes
from service.api.ops import SUPERVISOR_LABEL, setup_ops_routes
from service.frontdoors import judge0, piston, webgme, zerocloud
from service.frontdoors.door import CORE, Core, FrontDoor
from service.http.errors import error_middleware
from service.http.ratelimit import LIMITER, RateLimiter
from service.keys import (
    BLOB_URLS,
    HTTP,
    LANGUAGES,
    OFFLOAD,
    POOL,
    RUNTIME,
    SETTINGS,
    STORE,
    WORKERS,
)
from service.languages import Languages, image_infos
from service.pipeline.callbacks import CallbackPolicy
from service.pipeline.offload import Offload
from service.pipeline.wiring import MissionWorkers
from service.settings import Settings
from service.store import Store, open_store
from service.web import setup_web_routes

log = logging.getLogger(__name__)

# The front doors, one line each (service/frontdoors/<door>/, ``door`` makes one per app).
DOORS: tuple[Callable[[], FrontDoor], ...] = (
    webgme.door,
    zerocloud.door,
    judge0.door,
    piston.door,
)

FRONT_DOORS = web.AppKey("front_doors", tuple)
"""This app's door instances, in ``DOORS`` order."""


# Imported once by the offload processes' fork server: the modules of the functions they run
# (imported by a worker at its first call instead, they cost that request over a second).
OFFLOAD_PRELOAD = ("service.http.body", "service.api.prepare", "service.pipeline.callbacks")


async def offload_ctx(app: web.Application) -> AsyncIterator[None]:
    """Worker processes for large requests' decoding and validation: started and warmed before
    the server answers, stopped (work under way finished) after everything else."""
    offload = Offload(app[SETTINGS].offload_processes, OFFLOAD_PRELOAD)
    await offload.start()
    app[OFFLOAD] = offload
    try:
        yield
    finally:
        await offload.stop()


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    # Nodes may start with their database: give it half a minute to answer.
    options = {"connect_s": 30.0} if s.database_url else {}
    store = await open_store(s.database_url, s.db_path, **options)
    app[STORE] = store
    yield
    await store.close()


async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    config = SandboxConfig(
        owner=s.sandbox_owner,
        box_kib=s.sandbox_box_kib,
        tmp_kib=s.sandbox_tmp_kib,
        pids_limit=s.sandbox_pids,
        removal_defer_max_s=s.pool_defer_max_s,
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
    pool = SandboxPool(
        app[RUNTIME],
        s.pool_sizes,
        cap=s.pool_max,
        concurrency=s.pool_concurrency,
        memory_kib=s.pool_memory_kib,
        refill_delay_s=s.pool_quiet_s,
        refill_defer_max_s=s.pool_defer_max_s,
        demand_window_s=s.pool_window_s,
    )
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


async def doors_ctx(app: web.Application) -> AsyncIterator[None]:
    """The doors' tables (their migrations) and resources: up before the pipeline starts (it
    may resume their missions at once), down after it stopped."""
    core = app[CORE]
    async with contextlib.AsyncExitStack() as stack:
        for door in app[FRONT_DOORS]:
            if door.migrations is not None:
                await app[STORE].sql.migrate_door(door.name, _migrations(door, app[STORE]))
            await stack.enter_async_context(door.lifespan(core))
        yield


def _migrations(door: FrontDoor, store: Store) -> list[str]:
    """The door's migration scripts for the store's engine, in order (``NNN_what.sql``)."""
    assert door.migrations is not None
    folder = door.migrations / ("postgresql" if store.clustered else "sqlite")
    return [p.read_text() for p in sorted(folder.glob("[0-9][0-9][0-9]_*.sql"))]


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
        blob_reader_for=app.get(BLOB_URLS),
        owner=s.sandbox_owner,
        lease_s=s.lease_s,
        images=lambda: app[LANGUAGES].images,
        engine_probe=app[RUNTIME].adapter.version,
        engine_back=app[RUNTIME].remove_leftovers,
        max_reruns=s.max_reruns,
        engine_outage_s=s.engine_outage_s,
        heavy=app[OFFLOAD],
    )
    app[WORKERS] = workers
    workers.add_listener(app[EVENTS].publish)
    # The front doors' missions run on these workers; they must be known before resuming.
    for door in app[FRONT_DOORS]:
        workers.register(door.name, door)
    try:
        await workers.start()
        yield
    finally:
        await workers.stop(s.shutdown_grace_s)


@functools.cache
def openapi_document() -> dict[str, Any]:
    """``/api/openapi.json``: the mission API's description and every door's part."""
    return api_openapi.openapi_document([d for door in DOORS if (d := door().openapi())])


def doors_settings(given: Mapping[str, BaseSettings] | None = None) -> dict[str, BaseSettings]:
    """Every door's settings object by door name: the ``given`` ones (tests), the others read
    from the environment (``JUDGE_<DOOR>_*``; the WebGME door's keeps its ``JUDGE_*`` name).
    Raises what a door's settings model raises (``SettingsError`` for the WebGME door's)."""
    settings = dict(given or {})
    for make in DOORS:
        door = make()
        model = door.settings_model()
        if model is not None and door.name not in settings:
            settings[door.name] = model()
    return settings


def create_app(
    settings: Settings, door_settings: Mapping[str, BaseSettings] | None = None
) -> web.Application:
    """Build the application; resources start when it starts and stop in reverse order.

    ``door_settings``: a door's settings object by door name (tests); the others are read from
    the environment (``JUDGE_<DOOR>_*``).
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[LIMITER] = RateLimiter(settings.rate_limit)
    doors = tuple(make() for make in DOORS)
    core = Core(app, doors_settings(door_settings))
    app[FRONT_DOORS] = doors
    app[CORE] = core
    setup_events(app)
    setup_metrics(app, [door.metrics for door in doors])
    app.cleanup_ctx.extend(
        [
            offload_ctx,
            store_ctx,
            runtime_ctx,
            languages_ctx,
            pool_ctx,
            http_ctx,
            doors_ctx,
            workers_ctx,
        ]
    )
    setup_routes(app)
    setup_ops_routes(app)
    for door in doors:
        for prefix, sub_app in door.mount(core):
            app.add_subapp(prefix, sub_app)
    api_openapi.setup_openapi_routes(app, openapi_document())
    setup_web_routes(app)
    return app
