"""A language as an image declares it, and the parsing of an image's ``judge.languages`` label.

An image's build writes the label: a JSON list of entries (``images/<name>/languages.json``
with each version probed). Parsing is pure and strict per entry: a bad entry is reported and
left out, the image's other entries still count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from orchestrator.languages.semver import parse_version
from orchestrator.paths import check_name, has_control

LABEL = "judge.languages"
"""The label holding an image's languages (JSON list)."""
LABEL_IMAGE = "judge.languages.image"
"""The label naming the image that declared them (an image built FROM it inherits both)."""

MAX_LABEL_BYTES = 256 * 1024
_ID = re.compile(r"^[a-z0-9][a-z0-9+._-]{0,39}$")
_LIMIT_KEY = re.compile(r"^[a-z][a-z_]{0,39}$")
_MAX_ARGV = 64
_MAX_ARG_CHARS = 4096


@dataclass(frozen=True)
class Language:
    """One language of one image: how to compile and run a program written in it.

    ``compile``/``run`` are argv templates: ``{file}`` is the entry file's name, ``{stem}`` that
    name without its extension. ``compile_limits`` are execute limits (``memory_limit`` KiB,
    ``time_limit`` CPU ms) the compile step needs at least. ``fallback`` entries (the default
    image's copies of other images' languages) lose to any other declaration.
    """

    id: str
    name: str
    version: str
    image: str
    source_file: str
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    piston_language: str | None = None
    piston_runtime: str | None = None
    judge0_ids: tuple[int, ...] = ()
    judge0_name: str | None = None
    compile_limits: dict[str, int] = field(default_factory=dict, hash=False)
    fallback: bool = False

    def compile_argv(self, file: str, extra: Iterable[str] = ()) -> list[str] | None:
        """The compile command for entry file ``file`` with ``extra`` (compiler options)
        appended, or None for a language that is not compiled."""
        if self.compile is None:
            return None
        return [*expand(self.compile, file), *extra]

    def run_argv(self, file: str, extra: Iterable[str] = ()) -> list[str]:
        """The run command for entry file ``file`` with ``extra`` (program arguments) appended."""
        return [*expand(self.run, file), *extra]

    def describe(self) -> dict[str, Any]:
        """The language as ``GET /api/languages`` lists it (JSON-ready)."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "image": self.image,
            "source_file": self.source_file,
            "compile": None if self.compile is None else list(self.compile),
            "run": list(self.run),
            "compile_limits": dict(self.compile_limits),
            "piston": None
            if self.piston_language is None
            else {"language": self.piston_language, "runtime": self.piston_runtime},
            "judge0": None
            if not self.judge0_ids
            else {"ids": list(self.judge0_ids), "name": self.judge0_name or self.name},
        }


def expand(template: Iterable[str], file: str) -> list[str]:
    """``template`` with ``{file}`` and ``{stem}`` replaced (nothing else is interpreted)."""
    stem = PurePosixPath(file).stem or file
    return [a.replace("{file}", file).replace("{stem}", stem) for a in template]


def valid_file_name(name: str) -> bool:
    """A plain file name in the sandbox's directory: the judge's path and control-character
    rules (``orchestrator.paths``), and no directory."""
    if len(name) > 255 or "/" in name:
        return False
    try:
        check_name(name)
    except ValueError:
        return False
    return True


def _is_name(value: Any) -> bool:
    """A display name or alias: 1 to 100 characters, none of them a control character."""
    return isinstance(value, str) and 0 < len(value) <= 100 and not has_control(value)


def parse_label(text: str, image: str) -> tuple[list[Language], list[str]]:
    """The languages a ``judge.languages`` label declares for ``image``, and one message per
    entry left out (or for the whole label when it is not a JSON list)."""
    if len(text) > MAX_LABEL_BYTES:
        return [], [f"{image}: label {LABEL} is larger than {MAX_LABEL_BYTES} bytes"]
    try:
        doc = json.loads(text)
    except ValueError as e:
        return [], [f"{image}: label {LABEL} is not JSON: {e}"]
    if not isinstance(doc, list):
        return [], [f"{image}: label {LABEL} must be a JSON list"]
    languages: list[Language] = []
    problems: list[str] = []
    for i, entry in enumerate(doc):
        try:
            languages.append(parse_entry(entry, image))
        except ValueError as e:
            what = entry.get("id") if isinstance(entry, dict) else None
            problems.append(f"{image}: language {what or f'#{i}'!s} left out: {e}")
    return languages, problems


def parse_entry(entry: Any, image: str) -> Language:
    """One entry of a label; raises ``ValueError`` saying what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError("an entry must be an object")
    ident = _text(entry, "id", _ID)
    version = entry.get("version")
    if not isinstance(version, str):
        raise ValueError("'version' must be a string (the image build probes it)")
    parse_version(version)
    source_file = entry.get("source_file")
    if not isinstance(source_file, str) or not valid_file_name(source_file):
        raise ValueError("'source_file' must be a plain file name")
    run = _argv(entry, "run")
    if run is None:
        raise ValueError("'run' is required")
    compile_ = _argv(entry, "compile")
    piston = entry.get("piston")
    if piston is not None and not (
        isinstance(piston, dict)
        and _is_name(piston.get("language"))
        and (piston.get("runtime") is None or isinstance(piston.get("runtime"), str))
    ):
        raise ValueError("'piston' must be null or {language, runtime}")
    judge0 = entry.get("judge0")
    if judge0 is not None and not (
        isinstance(judge0, dict)
        and isinstance(judge0.get("ids"), list)
        and all(type(n) is int and 0 < n < 1 << 31 for n in judge0["ids"])
        and (judge0.get("name") is None or isinstance(judge0.get("name"), str))
    ):
        raise ValueError("'judge0' must be null or {ids: [positive integers], name}")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(_is_name(a) for a in aliases):
        raise ValueError("'aliases' must be a list of names")
    limits = entry.get("compile_limits") or {}
    if not isinstance(limits, dict) or not all(
        isinstance(k, str) and _LIMIT_KEY.match(k) and type(v) is int and v > 0
        for k, v in limits.items()
    ):
        raise ValueError("'compile_limits' must map limit names to positive integers")
    fallback = entry.get("fallback", False)
    if not isinstance(fallback, bool):
        raise ValueError("'fallback' must be true or false")
    return Language(
        id=ident,
        name=_name(entry),
        version=version,
        image=image,
        source_file=source_file,
        run=run,
        compile=compile_,
        aliases=tuple(dict.fromkeys(a.lower() for a in aliases)),
        piston_language=None if piston is None else piston["language"],
        piston_runtime=None if piston is None else piston.get("runtime"),
        judge0_ids=() if judge0 is None else tuple(dict.fromkeys(judge0["ids"])),
        judge0_name=None if judge0 is None else judge0.get("name"),
        compile_limits=dict(limits),
        fallback=fallback,
    )


def _name(entry: dict[str, Any]) -> str:
    value = entry.get("name")
    if not _is_name(value):
        raise ValueError("'name' is missing or not valid")
    return str(value)


def _text(entry: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"'{key}' is missing or not valid")
    return value


def _argv(entry: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = entry.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 0 < len(value) <= _MAX_ARGV
        or not all(isinstance(a, str) and 0 < len(a) <= _MAX_ARG_CHARS for a in value)
        or any("\x00" in a for a in value)
    ):
        raise ValueError(f"'{key}' must be a non-empty list of strings")
    return tuple(value)


__all__ = [
    "LABEL",
    "LABEL_IMAGE",
    "Language",
    "expand",
    "parse_entry",
    "parse_label",
    "valid_file_name",
]
