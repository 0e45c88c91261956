"""Both engines' schema as SQL files, read by the engines when they open a database.

``sqlite/``: ``schema.sql`` (every table, ``IF NOT EXISTS``, run at each open), ``columns.sql``
(columns added since the first release: each ``ALTER TABLE ... ADD COLUMN`` runs only where the
column is missing) and ``jobs.sql`` (the per-token jobs table; an older one is rebuilt).
``postgresql/``: ``NNN_what.sql``, one schema version each, applied in order once; never edit
one that shipped, append another.
"""

from __future__ import annotations

import re
from importlib import resources

_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+) ([^;]+);", re.IGNORECASE)
_MIGRATION = re.compile(r"[0-9]{3}_[a-z0-9_]+\.sql")


def read(engine: str, name: str) -> str:
    """The text of ``<engine>/<name>``."""
    return resources.files(__name__).joinpath(engine, name).read_text()


def migrations(engine: str) -> tuple[str, ...]:
    """The engine's numbered migrations (``NNN_what.sql``), in order."""
    folder = resources.files(__name__).joinpath(engine)
    names = sorted(p.name for p in folder.iterdir() if _MIGRATION.fullmatch(p.name))
    return tuple(read(engine, name) for name in names)


def added_columns() -> tuple[tuple[str, str, str], ...]:
    """SQLite's later columns as ``(table, column, definition)``, from ``columns.sql``."""
    return tuple(
        (m[1], m[2], m[3].strip()) for m in _ADD_COLUMN.finditer(read("sqlite", "columns.sql"))
    )
