"""Judge0 language ids served by the judge's languages, and the multi-file program.

Each language of the registry names the Judge0 1.13.1 ids it serves (``judge0.ids``). Clients pin
ids, so every id whose language an image provides is served and active, the ids of older
compiler versions included: those run the current toolchain and say so in their name. Source
files keep Judge0's names (``Main.java``, ``script.py``): clients' code expects them (a Java
``public class Main``). Id 89, the multi-file program, is Judge0's own: its ``additional_files``
zip brings ``compile`` (optional) and ``run`` scripts, run with bash in the default image.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from service.frontdoors.judge0.request import LanguageFacts

MULTI_FILE_ID = 89
MULTI_FILE_NAME = "Multi-file program"

# Judge0 1.13.1's own name and source file of each id a registry language may claim.
JUDGE0_IDS: dict[int, tuple[str, str]] = {
    43: ("Plain Text", "text.txt"),
    46: ("Bash (5.0.0)", "script.sh"),
    48: ("C (GCC 7.4.0)", "main.c"),
    49: ("C (GCC 8.3.0)", "main.c"),
    50: ("C (GCC 9.2.0)", "main.c"),
    52: ("C++ (GCC 7.4.0)", "main.cpp"),
    53: ("C++ (GCC 8.3.0)", "main.cpp"),
    54: ("C++ (GCC 9.2.0)", "main.cpp"),
    60: ("Go (1.13.5)", "main.go"),
    62: ("Java (OpenJDK 13.0.1)", "Main.java"),
    63: ("JavaScript (Node.js 12.14.0)", "script.js"),
    70: ("Python (2.7.17)", "script.py"),
    71: ("Python (3.8.1)", "script.py"),
    72: ("Ruby (2.7.0)", "script.rb"),
    73: ("Rust (1.40.0)", "main.rs"),
    74: ("TypeScript (3.7.4)", "script.ts"),
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

    @property
    def facts(self) -> LanguageFacts:
        return LanguageFacts(
            is_archived=self.is_archived,
            is_project=self.is_project,
            compiled=self.compile is not None,
        )

    def doc(self) -> dict[str, Any]:
        """``GET /languages/{id}``: Judge0's six keys; commands shown as a shell would read them
        (``%s`` where compiler options go, as Judge0 shows it)."""
        compile_cmd = None
        if self.compile is not None:
            compile_cmd = shlex.join(self.compile) + " %s"
        run_cmd = shlex.join(self.run) if self.run is not None else None
        return {
            "id": self.id,
            "name": self.name,
            "is_archived": self.is_archived,
            "source_file": self.source_file,
            "compile_cmd": compile_cmd,
            "run_cmd": run_cmd,
        }


def bind(template: Sequence[str], source_file: str) -> tuple[str, ...]:
    """An argv template with ``{file}`` and ``{stem}`` replaced (no other formatting: a brace
    in a command stays as it is)."""
    stem = source_file.rsplit(".", 1)[0] if "." in source_file else source_file
    return tuple(item.replace("{file}", source_file).replace("{stem}", stem) for item in template)


@dataclass(frozen=True)
class RegistryEntry:
    """What the door reads of one registry language (the registry's ``Language``)."""

    judge0_ids: tuple[int, ...]
    judge0_name: str
    version: str
    image: str
    compile: tuple[str, ...] | None
    run: tuple[str, ...]


def served(entries: Iterable[RegistryEntry], default_image: str) -> dict[int, Judge0Language]:
    """Every Judge0 id the registry's languages claim, plus the multi-file program.

    The newest id of a language is named after its toolchain (``C (GCC 12.2.0)``); an older id
    keeps Judge0's name and says what it runs (``C (GCC 7.4.0, runs GCC 12.2.0)``). Ids the door
    does not know Judge0's source file for are left out.
    """
    table: dict[int, Judge0Language] = {}
    for entry in entries:
        newest = max(entry.judge0_ids, default=None)
        for judge0_id in entry.judge0_ids:
            known = JUDGE0_IDS.get(judge0_id)
            if known is None:
                continue
            original, source_file = known
            current = f"{entry.judge0_name} ({entry.version})"
            if judge0_id == newest:
                name = current
            else:
                name = f"{original.removesuffix(')')}, runs {entry.version})"
            table[judge0_id] = Judge0Language(
                id=judge0_id,
                name=name,
                image=entry.image,
                source_file=source_file,
                compile=bind(entry.compile, source_file) if entry.compile else None,
                run=bind(entry.run, source_file),
            )
    table[MULTI_FILE_ID] = Judge0Language(
        id=MULTI_FILE_ID,
        name=MULTI_FILE_NAME,
        image=default_image,
        source_file=None,
        compile=("/bin/bash", "compile"),
        run=("/bin/bash", "run"),
        is_project=True,
    )
    return table


def listing(table: dict[int, Judge0Language], *, with_archived: bool) -> list[dict[str, Any]]:
    """``GET /languages`` (active ones, ``id`` and ``name``) or ``/languages/all`` (with
    ``is_archived``), sorted by name as Judge0 sorts them."""
    rows = sorted(table.values(), key=lambda lang: (lang.name, lang.id))
    if with_archived:
        return [{"id": x.id, "name": x.name, "is_archived": x.is_archived} for x in rows]
    return [{"id": x.id, "name": x.name} for x in rows if not x.is_archived]
