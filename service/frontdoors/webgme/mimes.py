"""File types by extension, as WebGME's blob server names them (its ``mime`` package, 4.1).

A blob's metadata hash covers its ``mime``, so the same file gets the same hash here and on a
WebGME server only if both name its type alike. The table is data, ``mimes.json`` beside this
module, written by ``scripts/make_mimes.py`` from the ``mime`` package that ``webgme-engine``
2.31 installs (the data of the ``mime-db`` project, MIT licence); a test checks it is current.
"""

from __future__ import annotations

import json
from importlib import resources


def _load() -> dict[str, str]:
    table = json.loads(resources.files(__package__).joinpath("mimes.json").read_text())
    if not isinstance(table, dict) or not table:
        raise ValueError("service/frontdoors/webgme/mimes.json is not a table of types")
    return table


TYPES: dict[str, str] = _load()
"""Lower-case extension (without the dot) -> type, as ``mime.getType`` resolves it."""


def mime_type(name: str) -> str | None:
    """The type of file ``name`` by its extension (``mime.getType``), None when unknown."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    has_path = len(last) < len(name)
    ext = last.rsplit(".", 1)[-1]
    has_dot = len(ext) < len(last) - 1
    if not has_dot and has_path:
        return None
    return TYPES.get(ext)
