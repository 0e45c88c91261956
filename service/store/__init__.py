"""Durable state behind one interface (``protocols``) with two engines.

SQLite (``sqlite``, embedded, the default) serves one node; PostgreSQL (``postgres``, chosen by
``JUDGE_DATABASE_URL=postgresql://...``) lets many nodes share one queue. ``open_store`` picks
the engine; the records are the same for both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeAlias, TypeVar

from service.store.records import (
    CALLBACK_STATES,
    MISSION_KIND,
    MISSION_STATES,
    MissionRow,
    StoreFull,
    hash_token,
)
from service.store.sqlite import SqliteStore
from service.store.sqlitedb import Database

__all__ = [
    "CALLBACKS_CHANNEL",
    "CALLBACK_STATES",
    "CANCEL_CHANNEL",
    "ENDED_CHANNEL",
    "MISSIONS_CHANNEL",
    "MISSION_KIND",
    "MISSION_STATES",
    "Database",
    "MissionRow",
    "PgStore",
    "SqliteStore",
    "Storage",
    "Store",
    "StoreFull",
    "hash_token",
    "is_postgres_url",
    "open_store",
]

from service.store.postgres import (
    CALLBACKS_CHANNEL,
    CANCEL_CHANNEL,
    ENDED_CHANNEL,
    MISSIONS_CHANNEL,
    PgStore,
)
from service.store.protocols import (
    CallbackRepo,
    DoorSqlRepo,
    MissionRepo,
    TokenRepo,
)

T = TypeVar("T")
P = ParamSpec("P")


class Storage(Protocol):
    """What the service holds: either engine, with one repository per aggregate. Callers ask
    for capabilities (``clustered``, ``blob_contents``), never for the engine by name."""

    engine: str
    clustered: bool
    """Many nodes may share this store (PostgreSQL): work is claimed under leases."""
    blob_contents: bool
    """Files a door stores (WebGME's blobs) belong in the database, where every node reads
    them (PostgreSQL: no shared file system); False: on the node's own disk (SQLite)."""

    @property
    def missions(self) -> MissionRepo: ...
    @property
    def callbacks(self) -> CallbackRepo: ...
    @property
    def tokens(self) -> TokenRepo: ...
    @property
    def sql(self) -> DoorSqlRepo: ...

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        """Hear NOTIFY hints of other nodes on ``channel`` (nothing on SQLite)."""
        ...

    async def ping(self) -> bool:
        """True when the database answers."""
        ...

    async def close(self) -> None: ...


Store: TypeAlias = Storage


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


async def open_store(database_url: str, sqlite_path: Path, **options: Any) -> Store:
    """Open the engine ``database_url`` names (empty: SQLite at ``sqlite_path``), its schema
    created or migrated. Raises ``ValueError`` for a URL of another engine."""
    if not database_url:
        return await SqliteStore.open(sqlite_path)
    if is_postgres_url(database_url):
        return await PgStore.open(database_url, **options)
    raise ValueError("JUDGE_DATABASE_URL must be a postgresql:// URL (or empty for SQLite)")


if TYPE_CHECKING:

    def _engines_implement_the_protocols(sqlite: SqliteStore, pg: PgStore) -> None:
        """Never called: mypy checks here that both engines satisfy every protocol."""
        engines: list[Storage] = [sqlite, pg]
        del engines
        for store in (sqlite, pg):
            missions: MissionRepo = store.missions
            callbacks: CallbackRepo = store.callbacks
            tokens: TokenRepo = store.tokens
            door_sql: DoorSqlRepo = store.sql
            del missions, callbacks, tokens, door_sql
