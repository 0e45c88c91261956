"""The FrontDoor interface: what a front door brings, and the ``Core`` it is given.

A door is a package ``service/frontdoors/<name>/`` whose ``__init__`` exposes ``door``, an object
of this protocol; ``service.app`` lists the doors (one line each) and nothing else in the core
names one. A door translates its protocol into missions and back: it brings its routes as
aiohttp sub-applications (its own error shape, authentication and WebSockets), its settings, its
OpenAPI paths, its metrics, its tables (migrations), the hooks on its missions and its callback
body, and reaches the judge only through :class:`Core`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from prometheus_client.core import Metric
from pydantic_settings import BaseSettings

from orchestrator.mission import normalise, parse_mission
from orchestrator.run.runner import MissionIO
from orchestrator.sandbox.sandbox import SandboxRuntime
from service.http.auth import token_hash_of
from service.http.openapi import DoorApi
from service.http.ratelimit import LIMITER, RateLimiter
from service.keys import BLOB_URLS, HTTP, LANGUAGES, RUNTIME, SETTINGS, STORE, WORKERS
from service.languages import Languages
from service.pipeline.callbacks import Callback
from service.pipeline.intake import DoorRows
from service.pipeline.progress import Listener
from service.pipeline.running import BlobReader
from service.pipeline.wiring import MissionWorkers
from service.settings import Settings
from service.store import MissionRow, Store
from service.store.protocols import DoorSqlRepo

__all__ = [
    "CORE",
    "Callback",
    "Core",
    "DoorApi",
    "FrontDoor",
    "core_of",
    "door_app",
]


class FrontDoor(Protocol):
    """A front door; ``service.app`` makes one per app (``door()`` of its package)."""

    name: str
    """The ``kind`` of its missions, its metrics label, its settings' and tables' key."""

    migrations: Path | None
    """A folder with ``sqlite/`` and ``postgresql/`` folders of ``NNN_what.sql`` files applied
    in order once per database, or None (no tables of its own)."""

    def settings_model(self) -> type[BaseSettings] | None:
        """Its settings class (``env_prefix="JUDGE_<NAME>_"``), or None."""
        ...

    def lifespan(self, core: Core) -> AbstractAsyncContextManager[None]:
        """Its long-lived resources: entered before the pipeline starts (its missions may be
        resumed at once), left after the pipeline stopped."""
        ...

    def mount(self, core: Core) -> list[tuple[str, web.Application]]:
        """Its routes: ``(prefix, sub-app)`` pairs, added to the app in order."""
        ...

    def openapi(self) -> DoorApi | None:
        """Its part of the OpenAPI document (every route it mounts), or None."""
        ...

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        """One of its missions is claimed: its files (``given``: what ``submit`` was handed in
        this process, None after a restart); None when it cannot run any more (it fails)."""
        ...

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        """One of its missions ended in ``state`` (``done``, ``cancelled``, ``failed``)."""
        ...

    def callback(self, row: MissionRow, result: dict[str, Any] | None) -> Callback | None:
        """The mission's callback or None; a pure function of the row and the result, called
        when it ends (on the loop when the mission and its result are small,
        ``service.pipeline.inline.callback_small``, else in a thread) and again, in a thread,
        when it is delivered (maybe on another node). It must not block on the loop."""
        ...

    async def metrics(self) -> Iterable[Metric]:
        """Its metric families for a scrape of ``/metrics`` (``judge_<name>_*``)."""
        ...


class Core:
    """What a door may use of the judge. Built with the app; the resources it hands out exist
    once the app has started (``RuntimeError`` before)."""

    def __init__(self, app: web.Application, door_settings: Mapping[str, BaseSettings]) -> None:
        self._app = app
        self._door_settings = dict(door_settings)

    def _get(self, key: web.AppKey[Any]) -> Any:
        try:
            return self._app[key]
        except KeyError:
            raise RuntimeError(f"the judge's {key!r} is not up yet (app not started)") from None

    @property
    def settings(self) -> Settings:
        return self._app[SETTINGS]

    def door_settings(self, name: str) -> Any:
        """The settings object of door ``name`` (its ``settings_model``)."""
        return self._door_settings[name]

    @property
    def store(self) -> Store:
        return self._get(STORE)  # type: ignore[no-any-return]

    @property
    def sql(self) -> DoorSqlRepo:
        """Statements on the door's own tables, on either engine, and transactions spanning
        them and the store's missions (``run_in_transaction``)."""
        return self.store.sql

    @property
    def http(self) -> aiohttp.ClientSession:
        """The judge's client session (the address policy is on its connector)."""
        return self._get(HTTP)  # type: ignore[no-any-return]

    @property
    def runtime(self) -> SandboxRuntime:
        return self._get(RUNTIME)  # type: ignore[no-any-return]

    @property
    def languages(self) -> Languages:
        """The language registry (``all``, ``get``, ``by_judge0_id``, ``find``, ``resolve``,
        ``refresh``)."""
        return self._get(LANGUAGES)  # type: ignore[no-any-return]

    @property
    def limiter(self) -> RateLimiter:
        return self._app[LIMITER]

    @property
    def _pipeline(self) -> MissionWorkers:
        return self._get(WORKERS)  # type: ignore[no-any-return]

    async def authenticate(self, token: str) -> str | None:
        """The hash of ``token`` when it is a valid judge token, else None."""
        return await token_hash_of(self.settings, self.store, token)

    async def submit(
        self,
        token_hash: str,
        mission: dict[str, Any],
        *,
        kind: str,
        io: MissionIO | None = None,
        normalised: dict[str, Any] | None = None,
        rows: DoorRows | None = None,
    ) -> int:
        """Store and queue a mission of door ``kind``; returns its id.

        Validates it under the server's caps unless ``normalised`` (its ``normalise``) is
        given: raises ``MissionInvalid``/``MissionTooLarge``. Raises ``QueueFull`` and
        ``ShuttingDown`` (``service.pipeline.intake``) when it cannot be taken now. ``rows``:
        ``rows(tx, mission_id)`` writes the door's own rows of the mission in the transaction
        that stores it (``service.store.protocols.Transaction``: both or neither).
        """
        if normalised is None:
            caps = self.settings.mission_caps
            normalised = await asyncio.to_thread(lambda: normalise(parse_mission(mission, caps)))
        return await self._pipeline.submit(
            token_hash, mission, normalised, kind=kind, io=io, rows=rows
        )

    async def cancel(self, mission_id: int) -> str:
        """Cancel a queued or running mission; its state afterwards (``missing`` if none)."""
        return await self._pipeline.cancel(mission_id)

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        """The mission's row once it ended (None when the server stops first)."""
        return await self._pipeline.wait_finished(mission_id)

    async def wait_synchronously(self, mission_id: int, outage_wait_s: float) -> MissionRow | None:
        """For a synchronous request: the mission's row once it ended, waiting as long as it
        takes while the engine answers; once the engine has been down ``outage_wait_s`` the
        mission is cancelled and ``EngineUnavailable`` raised (503 with ``Retry-After``)."""
        return await self._pipeline.wait_synchronously(mission_id, outage_wait_s)

    async def mission(self, mission_id: int) -> MissionRow | None:
        return await self.store.missions.get_mission(mission_id)

    def put(self, key: web.AppKey[Any], value: Any) -> None:
        """Set one of the door's own keys on the app (its resources, for tests to reach)."""
        self._app[key] = value

    def serve_blob_urls(self, reader_for: Callable[[str], BlobReader]) -> None:
        """Serve missions' ``blob:<hash>`` file URLs with ``reader_for(token_hash)`` (from the
        door's ``lifespan``: the pipeline starts after it)."""
        self._app[BLOB_URLS] = reader_for

    def add_listener(self, listener: Listener) -> None:
        """Hear every mission's progress (``state``, ``execute``, ``end`` events)."""
        self._pipeline.add_listener(listener)


CORE = web.AppKey("core", Core)


def door_app(core: Core, middlewares: Iterable[Any] = ()) -> web.Application:
    """A sub-application for a door's routes, with ``core`` under :data:`CORE`."""
    app = web.Application(middlewares=list(middlewares))
    app[CORE] = core
    return app


def core_of(request: web.Request) -> Core:
    """The core, from a handler of a door's sub-app."""
    return request.config_dict[CORE]
