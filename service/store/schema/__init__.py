"""Both engines' schema as SQL files, read by the engines when they open a database.

``sqlite/``: ``schema.sql`` (every table, ``IF NOT EXISTS``, run at each open) and
``columns.sql`` (columns added since the first release: each ``ALTER TABLE ... ADD COLUMN`` runs
only where the column is missing). ``postgresql/``: ``NNN_what.sql``, one schema version each,
applied in order once; never edit one that shipped, append another. (Version 1 also created the
WebGME door's tables, which its own migrations now own: ``service/frontdoors/webgme/sql``.)

Doors' migration scripts on SQLite are split here into statements, so that an
``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` (PostgreSQL's, which SQLite lacks) is skipped when
the column is there.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from importlib import resources

_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+) ([^;]+);", re.IGNORECASE)
_ADD_COLUMN_IF_MISSING = re.compile(
    r"(?:\s*--[^\n]*\n)*\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+",
    re.IGNORECASE,
)
_COMMENTS_ONLY = re.compile(r"--[^\n]*")
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


def statements(script: str) -> Iterator[str]:
    """The statements of a SQLite script, in order, each with the comments before it (a ``;``
    inside a string or a trigger does not end one: ``sqlite3.complete_statement`` decides).
    What follows the last ``;`` is one more statement when it is more than comments."""
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            yield script[start : end + 1]
            start = end + 1
    if _COMMENTS_ONLY.sub("", script[start:]).strip():
        yield script[start:]


def sqlite_statement(statement: str, columns_of: Callable[[str], set[str]]) -> str | None:
    """``statement`` as SQLite runs it: an ``ALTER TABLE t ADD COLUMN IF NOT EXISTS c ...`` is
    None (skipped) when ``columns_of(t)`` holds ``c``, else the same without ``IF NOT
    EXISTS``; any other statement is itself."""
    match = _ADD_COLUMN_IF_MISSING.match(statement)
    if match is None:
        return statement
    if match[2] in columns_of(match[1]):
        return None
    return f"ALTER TABLE {match[1]} ADD COLUMN {match[2]} {statement[match.end() :]}"
