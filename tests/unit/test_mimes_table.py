"""The shipped table of file types is the one the generator writes from WebGME's ``mime``."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from service.frontdoors.webgme.mimes import TYPES, mime_type
from tests.scriptfile import REPO, load


def generator() -> ModuleType:
    return load("scripts/make_mimes.py")


def test_the_committed_table_is_what_the_generator_writes() -> None:
    make = generator()
    if not (make.MIME / "package.json").is_file():
        pytest.skip("WebGME's npm packages are not installed (make webgme-deps needs npm)")
    assert make.OUT.read_text() == make.render(make.types())


def test_the_module_serves_the_committed_table() -> None:
    assert TYPES == json.loads((REPO / "service/frontdoors/webgme/mimes.json").read_text())
    assert mime_type("archive.tar.XZ") == "application/x-xz"
    assert mime_type("notes.md") == "text/markdown"


def test_the_generator_resolves_tables_as_mime_does(tmp_path: Path) -> None:
    types = tmp_path / "dist" / "types"
    types.mkdir(parents=True)
    (tmp_path / "package.json").write_text('{"version": "4.1.2"}')
    (types / "standard.js").write_text(
        "const types = {\n    'text/x-a': ['a', '*b'],\n    'Text/X-C': ['C'],\n};\n"
        "Object.freeze(types);\nexport default types;\n"
    )
    (types / "other.js").write_text("const types = {\n    'text/x-b': ['b'],\n};\n")
    assert generator().types(tmp_path) == {"a": "text/x-a", "b": "text/x-b", "c": "text/x-c"}
    (types / "other.js").write_text("const types = {\n    'text/x-d': ['a'],\n};\n")
    with pytest.raises(ValueError, match="a: text/x-d conflicts with text/x-a"):
        generator().types(tmp_path)
