"""Write service/frontdoors/webgme/mimes.json: file types by extension as WebGME names them.

A blob's metadata hash covers its ``mime``, so the executor API names a file's type exactly as a
WebGME server does, or the same upload gets another hash there. WebGME's blob server asks the
``mime`` package (``mime.getType``); ``webgme-engine`` 2.31 installs ``mime`` 4.1.2, whose tables
are the data of the ``mime-db`` project (MIT licence). This script reads those tables from the
package that ``make webgme-deps`` installs (``tests/webgme``, pinned by its package-lock.json),
so it needs no network once that ran, and resolves them as ``mime``'s own ``define`` does:
``standard`` types, then ``other``; an extension starred (``*ext``) is not mapped to its type;
a second type for one extension is an error.

Run ``python3 scripts/make_mimes.py`` after updating the pinned ``webgme-engine`` (and so its
``mime``); the test suite checks that the committed file is what this script writes.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "service" / "frontdoors" / "webgme" / "mimes.json"
MIME = REPO / "tests" / "webgme" / "node_modules" / "webgme-engine" / "node_modules" / "mime"
TABLES = ("standard.js", "other.js")  # the order ``mime``'s index.js defines them in
VERSION = "4.1.2"


class SourceMissing(RuntimeError):
    """The ``mime`` package is not installed where ``make webgme-deps`` puts it."""


def _table(path: Path) -> dict[str, list[str]]:
    """One of ``mime``'s tables: ``const types = {'type': ['ext', ...], ...}; ...``, an object
    literal that is also a Python literal (quoted strings, lists, trailing commas)."""
    text = path.read_text()
    start, end = text.index("{"), text.rindex("}") + 1
    table = ast.literal_eval(text[start:end])
    if not isinstance(table, dict):
        raise ValueError(f"{path}: not a table of types")
    return table


def types(mime: Path = MIME) -> dict[str, str]:
    """Extension -> type, as ``mime.getType`` resolves them. Raises ``SourceMissing`` without the
    package and ``ValueError`` for a version other than the pinned one or a conflict."""
    manifest = mime / "package.json"
    if not manifest.is_file():
        raise SourceMissing(f"{mime} is missing: run `make webgme-deps` first")
    version = json.loads(manifest.read_text())["version"]
    if version != VERSION:
        raise ValueError(f"mime {version} is installed; this script reads {VERSION}")
    by_extension: dict[str, str] = {}
    for name in TABLES:
        for kind, extensions in _table(mime / "dist" / "types" / name).items():
            kind = kind.lower()
            for extension in (e.lower() for e in extensions):
                if extension.startswith("*"):
                    continue  # listed for the type, never the type of that extension
                current = by_extension.get(extension)
                if current is not None and current != kind:
                    raise ValueError(f"{extension}: {kind} conflicts with {current}")
                by_extension[extension] = kind
    return dict(sorted(by_extension.items()))


def render(table: dict[str, str]) -> str:
    """The committed file: one extension a line, sorted, so a change of ``mime`` diffs well."""
    lines = [f"{json.dumps(ext)}: {json.dumps(kind)}" for ext, kind in sorted(table.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> int:
    try:
        table = types()
    except SourceMissing as e:
        print(e, file=sys.stderr)
        return 1
    OUT.write_text(render(table))
    print(f"{OUT.relative_to(REPO)}: {len(table)} extensions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
