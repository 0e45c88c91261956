"""Judge0 language ids served by the judge's languages, and the multi-file program.

Each language of the registry names the Judge0 1.13.1 ids it serves (``judge0.ids``). Clients pin
ids, so every id whose language an image provides is served and active, the ids of older
compiler versions included: those run the current toolchain and say so in their name. Source
files are Judge0's names (``Main.java``, ``script.py``), as the registry declares them. Id 89,
the multi-file program: its ``additional_files`` zip brings ``compile`` (optional) and ``run``
scripts, run with bash.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from orchestrator.languages import LanguageRegistry
from service.frontdoors.judge0.request import LanguageFacts

MULTI_FILE_ID = 89
UNVERSIONED = frozenset({43, MULTI_FILE_ID})  # Judge0 names these without a version

# Judge0 1.13.1's own names of ids with older toolchains: such an id keeps its name and says
# what it runs now.
JUDGE0_NAMES: dict[int, str] = {
    48: "C (GCC 7.4.0)",
    49: "C (GCC 8.3.0)",
    52: "C++ (GCC 7.4.0)",
    53: "C++ (GCC 8.3.0)",
}


@dataclass(frozen=True)
class Judge0Language:
    """One served Judge0 id: what runs it (argv templates already bound to ``source_file``)."""

    id: int
    name: str
    image: str
    source_file: str | None
    compile: tuple[str, ...] | None
    run: tuple[str, ...] | None
    is_project: bool = False
    is_archived: bool = False
    compile_memory_kib: int = 0  # what the compile step needs at least (the registry's)
    compile_time_ms: int = 0
    version: str = ""  # the toolchain's (part of a compile's cache key)

    @property
    def facts(self) -> LanguageFacts:
        return LanguageFacts(
            is_archived=self.is_archived,
            is_project=self.is_project,
            compiled=self.compile is not None and not self.is_project,
        )

    def doc(self) -> dict[str, Any]:
        """``GET /languages/{id}``: Judge0's six keys; commands shown as a shell would read them
        (``%s`` where compiler options go, as Judge0 shows it)."""
        compile_cmd = None
        if self.compile is not None:
            compile_cmd = shlex.join(self.compile) + ("" if self.is_project else " %s")
        run_cmd = shlex.join(self.run) if self.run is not None else None
        return {
            "id": self.id,
            "name": self.name,
            "is_archived": self.is_archived,
            "source_file": self.source_file,
            "compile_cmd": compile_cmd,
            "run_cmd": run_cmd,
        }


def served(registry: LanguageRegistry) -> dict[int, Judge0Language]:
    """Every Judge0 id the registry's languages claim (the registry settles which language
    serves an id two images claim).

    An id is named after its language and version (``C (12.2.0)``); one of Judge0's older
    toolchain ids keeps Judge0's name and says what it runs (``C (GCC 7.4.0, runs 12.2.0)``).
    Id 89 is the multi-file program: its zip brings the files, its compile step runs only when
    the zip has a ``compile`` script.
    """
    table: dict[int, Judge0Language] = {}
    ids = sorted({i for lang in registry.all() for i in lang.judge0_ids})
    for judge0_id in ids:
        lang = registry.by_judge0_id(judge0_id)
        if lang is None:
            continue
        base = lang.judge0_name or lang.name
        old = JUDGE0_NAMES.get(judge0_id)
        name = (
            f"{old.removesuffix(')')}, runs {lang.version})" if old else f"{base} ({lang.version})"
        )
        if judge0_id in UNVERSIONED:
            name = base
        file = lang.source_file
        table[judge0_id] = Judge0Language(
            id=judge0_id,
            name=name,
            image=lang.image,
            source_file=None if judge0_id == MULTI_FILE_ID else file,
            compile=tuple(lang.compile_argv(file) or ()) or None,
            run=tuple(lang.run_argv(file)),
            is_project=judge0_id == MULTI_FILE_ID,
            compile_memory_kib=lang.compile_limits.get("memory_limit", 0),
            compile_time_ms=lang.compile_limits.get("time_limit", 0),
            version=lang.version,
        )
    return table


def listing(table: dict[int, Judge0Language], *, with_archived: bool) -> list[dict[str, Any]]:
    """``GET /languages`` (active ones, ``id`` and ``name``) or ``/languages/all`` (with
    ``is_archived``), sorted by name as Judge0 sorts them."""
    rows = sorted(table.values(), key=lambda lang: (lang.name, lang.id))
    if with_archived:
        return [{"id": x.id, "name": x.name, "is_archived": x.is_archived} for x in rows]
    return [{"id": x.id, "name": x.name} for x in rows if not x.is_archived]
