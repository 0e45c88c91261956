"""The language registry without an engine: label parsing, precedence, lookups, version ranges,
and the shipped images/*/languages.json files themselves."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.languages import (
    LABEL,
    LABEL_IMAGE,
    ImageInfo,
    build_registry,
    expand,
    parse_label,
    satisfies,
)
from orchestrator.languages.model import parse_entry

IMAGES = Path(__file__).resolve().parents[2] / "images"


def _build_tool() -> Any:
    """images/languages.py (the build's label step), loaded as a module."""
    spec = importlib.util.spec_from_file_location("images_languages", IMAGES / "languages.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped(name: str) -> list[dict[str, Any]]:
    """images/NAME/languages.json as the build labels it, with a made-up version."""
    entries: list[dict[str, Any]] = _build_tool().entries_of(name)
    return [{**e, "version": "1.2.3"} for e in entries]


def entry(ident: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": ident,
        "name": ident.title(),
        "version": "1.0.0",
        "aliases": [],
        "piston": None,
        "judge0": None,
        "source_file": "main",
        "compile": None,
        "run": ["sh", "{file}"],
    }
    return {**base, **over}


def image(
    tag: str, entries: list[dict[str, Any]], created: float = 0.0, declared: str | None = None
) -> ImageInfo:
    labels = {LABEL: json.dumps(entries), LABEL_IMAGE: declared or tag}
    return ImageInfo(id=f"sha256:{tag}", tags=(f"{tag}:latest",), labels=labels, created=created)


SHIPPED_IMAGES = sorted(p.parent.name for p in IMAGES.glob("*/languages.json"))


def test_every_sandbox_image_but_base_declares_its_languages() -> None:
    """base declares nothing (an image built FROM it would inherit its labels); server is the
    judge itself, not a sandbox."""
    dirs = {p.parent.name for p in IMAGES.glob("*/Dockerfile")} - {"base", "server"}
    assert dirs
    assert dirs <= set(SHIPPED_IMAGES)


@pytest.mark.parametrize("name", SHIPPED_IMAGES)
def test_shipped_languages_parse(name: str) -> None:
    languages, problems = parse_label(json.dumps(shipped(name)), f"judge/{name}")
    assert not problems
    assert languages
    for lang in languages:
        # Every template names the entry file somewhere: no language ignores its source.
        templates = [*(lang.compile or ()), *lang.run]
        assert any("{file}" in a for a in templates), lang.id


def test_shipped_registry_serves_the_peers_ids_and_names() -> None:
    """The shipped images together provide what the Judge0 and Piston doors promise, each
    language from its own image (judge/default's copies are fallbacks)."""
    images = [image(f"judge/{n}", shipped(n)) for n in SHIPPED_IMAGES]
    registry = build_registry(images)
    assert not registry.notes
    judge0 = {n: registry.by_judge0_id(n) for n in (43, 46, 48, 49, 50, 52, 53, 54, 60, 62, 63)}
    judge0 |= {n: registry.by_judge0_id(n) for n in (71, 73, 89)}
    assert all(judge0.values()), judge0
    owner = {n: lang.image for n, lang in judge0.items() if lang is not None}
    assert owner[50] == owner[48] == owner[54] == owner[52] == "judge/cpp"
    assert owner[71] == "judge/python3"
    assert owner[62] == "judge/java"
    assert owner[63] == "judge/node"
    assert owner[46] == owner[43] == owner[89] == "judge/default"
    piston = {
        (lang.piston_language, lang.piston_runtime)
        for lang in registry.all()
        if lang.piston_language is not None
    }
    assert {("python", None), ("javascript", "node"), ("c", "gcc"), ("c++", "gcc")} <= piston
    assert {("java", None), ("go", None), ("rust", None), ("bash", None)} <= piston
    assert registry.get("java") is not None
    assert registry.get("java").source_file == "Main.java"  # type: ignore[union-attr]
    assert registry.find("py") is registry.get("python3")
    assert registry.find("C++") is registry.get("cpp")
    # Without judge/cpp, judge/default's fallback C serves the same ids.
    alone = build_registry([i for i in images if i.tags[0] != "judge/cpp:latest"])
    assert alone.by_judge0_id(50).image == "judge/default"  # type: ignore[union-attr]


def test_bad_labels_and_entries_are_reported_and_left_out() -> None:
    assert parse_label("{", "x")[1][0].startswith("x: label judge.languages is not JSON")
    assert parse_label("{}", "x") == ([], ["x: label judge.languages must be a JSON list"])
    good = entry("ok")
    bad = [
        entry("bad-version", version="17"),
        entry("bad-file", source_file="../etc/passwd"),
        entry("no-run", run=None),
        entry("empty-run", run=[]),
        entry("BadId"),
        entry("bad-judge0", judge0={"ids": [-1]}),
        entry("bad-limits", compile_limits={"memory_limit": "lots"}),
        entry("bad-argv", compile=["gcc", 3]),
        entry("ctl-name", name="Shell\x1b[31m"),
        entry("ctl-alias", aliases=["ok", "new\nline"]),
        entry("ctl-file", source_file="main\x85"),
        entry("dot-file", source_file=".."),
        "not an object",
    ]
    languages, problems = parse_label(json.dumps([good, *bad]), "judge/x")
    assert [lang.id for lang in languages] == ["ok"]
    assert len(problems) == len(bad)
    assert "bad-version" in problems[0]
    assert "version" in problems[0]
    with pytest.raises(ValueError, match="source_file"):
        parse_entry(entry("x", source_file="a/b"), "img")


def test_expand_replaces_file_and_stem_only() -> None:
    template = ["cc", "-o", "{stem}", "{file}", "${HOME}", "{other}"]
    assert expand(template, "Main.java") == ["cc", "-o", "Main", "Main.java", "${HOME}", "{other}"]
    assert expand(template, "main")[2:4] == ["main", "main"]
    assert expand(template, "file0.code")[2:4] == ["file0", "file0.code"]
    lang = parse_entry(entry("c", compile=["gcc", "{file}"], run=["./a.out"]), "img")
    assert lang.compile_argv("main", ["-lm"]) == ["gcc", "main", "-lm"]
    assert lang.run_argv("main", ["1", "2"]) == ["./a.out", "1", "2"]
    assert parse_entry(entry("py"), "img").compile_argv("x") is None


def test_the_languages_own_image_wins_over_the_default_fallback() -> None:
    default = image("judge/default", [entry("c", fallback=True, judge0={"ids": [50]})], 9.0)
    cpp = image("judge/cpp", [entry("c", judge0={"ids": [50]})], 1.0)
    for order in ([default, cpp], [cpp, default]):
        registry = build_registry(order)
        assert registry.get("c").image == "judge/cpp"  # type: ignore[union-attr]
        assert registry.by_judge0_id(50).image == "judge/cpp"  # type: ignore[union-attr]
        assert [lang.image for lang in registry.providers("c")] == ["judge/cpp", "judge/default"]
        assert not registry.notes  # a fallback giving way is expected, not news


def test_a_custom_image_replaces_a_shipped_language_and_says_so() -> None:
    shipped_py = image("judge/python3", [entry("python3", judge0={"ids": [71]})], created=5.0)
    custom = image("myorg/python-numpy", [entry("python3", judge0={"ids": [71]})], created=1.0)
    registry = build_registry([shipped_py, custom])
    assert registry.get("python3").image == "myorg/python-numpy"  # type: ignore[union-attr]
    assert registry.by_judge0_id(71).image == "myorg/python-numpy"  # type: ignore[union-attr]
    assert registry.notes == ("language 'python3': myorg/python-numpy replaces judge/python3",)


def test_between_equals_the_newer_image_wins_then_the_name() -> None:
    old = image("judge/lua", [entry("lua")], created=1.0)
    new = image("judge/lua2", [entry("lua")], created=2.0)
    assert build_registry([old, new]).get("lua").image == "judge/lua2"  # type: ignore[union-attr]
    a = image("judge/a", [entry("lua")], created=1.0)
    b = image("judge/b", [entry("lua")], created=1.0)
    for order in ([a, b], [b, a]):
        assert build_registry(order).get("lua").image == "judge/a"  # type: ignore[union-attr]


def test_an_image_built_from_a_language_image_declares_nothing_of_its_own() -> None:
    """Labels are inherited: myorg/py FROM judge/python3 carries judge/python3's labels. While
    judge/python3 is there it provides python3; a child that declares its own wins."""
    entries = [entry("python3")]
    parent = image("judge/python3", entries, created=1.0)
    child = image("myorg/py", entries, created=2.0, declared="judge/python3")
    registry = build_registry([parent, child])
    assert registry.get("python3").image == "judge/python3"  # type: ignore[union-attr]
    assert not registry.notes
    # The parent gone, the child's (inherited) declaration is all there is.
    assert build_registry([child]).get("python3").image == "myorg/py"  # type: ignore[union-attr]
    # A child with its own declaration (a different label) declares under its own name.
    own = image("myorg/py", [entry("python3", version="3.12.1")], 2.0, declared="judge/python3")
    assert build_registry([parent, own]).get("python3").image == "myorg/py"  # type: ignore[union-attr]


def test_judge0_ids_and_aliases_follow_precedence_and_ids_beat_aliases() -> None:
    shipped_py = image("judge/python3", [entry("python3", judge0={"ids": [71]}, aliases=["py"])])
    pypy = image("myorg/pypy", [entry("pypy", judge0={"ids": [71]}, aliases=["py", "python3"])])
    registry = build_registry([shipped_py, pypy])
    assert registry.by_judge0_id(71).id == "pypy"  # type: ignore[union-attr]
    assert registry.find("py").id == "pypy"  # type: ignore[union-attr]
    assert registry.find("python3").id == "python3"  # type: ignore[union-attr]
    assert any(n.startswith("Judge0 id 71: 'pypy'") for n in registry.notes)


def test_images_without_languages_or_tags_are_ignored() -> None:
    untagged = ImageInfo("sha256:u", (), {LABEL: json.dumps([entry("x")])})
    plain = ImageInfo("sha256:p", ("judge/base:latest",), {"judge.supervisor": "1"})
    assert build_registry([untagged, plain]).all() == []


def test_resolve_picks_the_newest_version_in_range() -> None:
    py311 = image("judge/python3", [entry("python3", version="3.11.2", aliases=["py"])])
    py312 = image(
        "myorg/py312",
        [entry("python312", version="3.12.1", piston={"language": "python", "runtime": None})],
    )
    registry = build_registry([py311, py312])
    assert registry.resolve("python").id == "python312"  # type: ignore[union-attr]
    assert registry.resolve("python", "3.11.x") is None  # python312 is "python"; 3.11 is not
    assert registry.resolve("py", "3.11.x").id == "python3"  # type: ignore[union-attr]
    assert registry.resolve("PY", "*").id == "python3"  # type: ignore[union-attr]
    assert registry.resolve("python", "^3.12").id == "python312"  # type: ignore[union-attr]
    assert registry.resolve("python", "not a range") is None
    assert registry.resolve("cobol") is None


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("3.11.2", "*", True),
        ("3.11.2", "", True),
        ("3.11.2", "x", True),
        ("3.11.2", "3", True),
        ("3.11.2", "3.x", True),
        ("3.11.2", "3.11", True),
        ("3.11.2", "3.11.x", True),
        ("3.11.2", "3.10", False),
        ("3.11.2", "3.11.2", True),
        ("3.11.3", "3.11.2", False),
        ("3.11.2", "=3.11.2", True),
        ("3.11.2", "v3.11.2", True),
        ("3.11.2", ">=3.10", True),
        ("3.11.2", ">= 3.12", False),
        ("3.11.2", ">3.11", False),
        ("3.12.0", ">3.11", True),
        ("3.11.2", ">3.11.1", True),
        ("3.11.2", "<3.11.2", False),
        ("3.11.2", "<3.12", True),
        ("3.11.9", "<=3.11", True),
        ("3.12.0", "<=3.11", False),
        ("3.11.2", "^3.1", True),
        ("4.0.0", "^3.1", False),
        ("0.2.5", "^0.2.1", True),
        ("0.3.0", "^0.2.1", False),
        ("0.0.3", "^0.0.3", True),
        ("0.0.4", "^0.0.3", False),
        ("1.2.9", "~1.2.3", True),
        ("1.3.0", "~1.2.3", False),
        ("1.9.0", "~1", True),
        ("3.11.2", ">=3 <3.11", False),
        ("3.11.2", "2.x || 3.11.x", True),
        ("17.0.21", "17", True),
        ("17.0.21", "17.0.9", False),
    ],
)
def test_semver_ranges(version: str, spec: str, expected: bool) -> None:
    assert satisfies(version, spec) is expected


def test_semver_refuses_what_is_not_a_range() -> None:
    for spec in ("abc", "3.a", "1.2.3.4", ">=>1"):
        with pytest.raises(ValueError, match="not a version"):
            satisfies("1.0.0", spec)
