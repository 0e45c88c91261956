"""The Judge0 door: its sub-application, its missions' hooks, its table.

Provisional wiring until the judge's ``FrontDoor`` interface lands: ``service.app`` calls
``setup(app)`` and registers ``door`` with the workers; the door reads the judge's resources
from the root application's keys when they exist.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from orchestrator.languages import LanguageRegistry
from orchestrator.run.runner import MissionIO
from service.frontdoors.judge0 import languages as langs
from service.frontdoors.judge0.ports import Judge0Ports
from service.frontdoors.judge0.repo import Judge0Repo
from service.frontdoors.judge0.request import Judge0Config
from service.frontdoors.judge0.routes import judge0_errors, routes
from service.frontdoors.judge0.settings import Judge0Settings
from service.frontdoors.judge0.submissions import KIND, Submissions
from service.http.ratelimit import LIMITER
from service.keys import LANGUAGES, SETTINGS, STORE, WORKERS
from service.pipeline.callbacks import url_refusal
from service.pipeline.compilecache import CompileCache
from service.store import MissionRow
from service.store.records import hash_token
from service.store.sql import Statement

MIGRATIONS = Path(__file__).parent / "sql"


class StoreSql:
    """The door's statements on the judge's store (SQLite on its thread, or PostgreSQL)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._ready = asyncio.Lock()
        self._migrated = False

    async def _migrate(self) -> None:
        async with self._ready:
            if self._migrated:
                return
            pool = getattr(self._store, "_pool", None)
            engine = "postgresql" if pool is not None else "sqlite"
            files = sorted((MIGRATIONS / engine).glob("*.sql"))
            script = "\n".join(p.read_text() for p in files)
            if pool is not None:
                await pool.execute(script)
            else:
                await self._store.call(lambda db: db._conn.executescript(script))
            self._migrated = True

    async def execute(self, statement: Statement, **values: Any) -> int:
        await self._migrate()
        pool = getattr(self._store, "_pool", None)
        if pool is not None:
            status = await pool.execute(*statement.bind_pg(**values))
            return int(status.rsplit(" ", 1)[-1]) if status and status[-1].isdigit() else 0

        def run(db: Any) -> int:
            with db._conn:
                return int(db._conn.execute(*statement.bind_sqlite(**values)).rowcount)

        return int(await self._store.call(run))

    async def fetch_all(self, statement: Statement, **values: Any) -> list[dict[str, Any]]:
        await self._migrate()
        pool = getattr(self._store, "_pool", None)
        if pool is not None:
            return [dict(r) for r in await pool.fetch(*statement.bind_pg(**values))]

        def run(db: Any) -> list[dict[str, Any]]:
            cur = db._conn.execute(*statement.bind_sqlite(**values))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

        return list(await self._store.call(run))


class Judge0Door:
    """The door's state, bound to the judge when the root application starts."""

    name = KIND

    def __init__(self) -> None:
        self.settings = Judge0Settings.model_construct()
        self.cache = CompileCache()
        self._app: web.Application | None = None
        self._submissions: Submissions | None = None
        self._table: tuple[LanguageRegistry, dict[int, langs.Judge0Language]] | None = None

    def _root(self) -> web.Application:
        assert self._app is not None, "the Judge0 door is not mounted"
        return self._app

    def languages(self) -> dict[int, langs.Judge0Language]:
        """The served ids, rebuilt when the registry changed (images came or went)."""
        registry = self._root()[LANGUAGES].registry
        if self._table is None or self._table[0] is not registry:
            self._table = (registry, langs.served(registry))
        return self._table[1]

    def config(self) -> Judge0Config:
        s = self._root()[SETTINGS]
        return self.settings.config(
            max_queue_size=s.max_queued,
            callbacks_max_tries=s.callback_attempts,
            callbacks_timeout=s.callback_timeout_s,
        )

    @property
    def submissions(self) -> Submissions:
        if self._submissions is None:
            root = self._root()
            self._submissions = Submissions(
                Judge0Repo(StoreSql(root[STORE])),
                self.cache,
                self.config,
                self.languages,
                lambda mission_id: root[STORE].missions.get_mission(mission_id),
            )
        return self._submissions

    # -- hooks the workers call ------------------------------------------------------------------

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return await self.submissions.started(row, given)

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        await self.submissions.finished(mission_id, state, result, io)

    # -- mounting --------------------------------------------------------------------------------

    def setup(self, root: web.Application) -> None:
        """Mount ``/judge0`` on the root application."""
        self._app = root
        settings = root[SETTINGS]
        self.settings = Judge0Settings()
        self.cache = CompileCache(
            max_bytes=self.settings.compile_cache_bytes, ttl_s=self.settings.compile_cache_ttl_s
        )
        self._submissions = None
        self._table = None

        async def auth(token: str) -> str | None:
            digest = hash_token(token)
            for configured in root[SETTINGS].tokens:
                if hash_token(configured) == digest:
                    return digest
            return digest if await root[STORE].tokens.token_active(digest) else None

        async def submit(
            token_hash: str,
            mission: dict[str, Any],
            normalised: dict[str, Any],
            kind: str,
            io: MissionIO | None,
        ) -> int:
            return int(
                await root[WORKERS].submit(token_hash, mission, normalised, kind=kind, io=io)
            )

        async def running() -> int:
            return sum((await root[STORE].missions.running_by_owner()).values())

        ports = Judge0Ports(
            settings=lambda: self.settings,
            anonymous_tenant=hash_token("judge0:anonymous"),
            authenticate=auth,
            rate_limit=lambda token_hash: root[LIMITER].take(token_hash),
            submit=submit,
            single_node=lambda: root[STORE].engine != "postgresql",
            mission=lambda i: root[STORE].missions.get_mission(i),
            wait_finished=lambda i: root[WORKERS].wait_finished(i),
            callback_refusal=lambda url: _callback_refusal(url, root[SETTINGS].address_policy),
            mission_caps=lambda: root[SETTINGS].mission_caps,
            languages=self.languages,
            config=self.config,
            queued=lambda: root[STORE].missions.queued_count(),
            running=running,
            max_running=lambda: root[SETTINGS].max_running,
            submissions_of=lambda: self.submissions,
        )
        app = web.Application(middlewares=[judge0_errors], client_max_size=settings.max_body_bytes)
        routes(app, ports)
        root.add_subapp("/judge0", app)


def _callback_refusal(url: str, policy: Any) -> str | None:
    if not url.startswith(("http://", "https://")):
        return "must be an http or https URL"
    return url_refusal(url, policy)


door = Judge0Door()
