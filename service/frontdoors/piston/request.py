"""Piston's execute body, checked the way Piston checks it, and then some.

:func:`parse_execute` takes the decoded JSON body and returns an :class:`ExecuteJob` or raises
:class:`PistonError` 400 with Piston's own message, in Piston's order: ``language``,
``version``, ``files`` and each file's ``content``, the runtime, at least one utf8 file, then
the six stage limits. What Piston lets through and then fails on with a 500 (a file name that
escapes the job's directory, an ``args`` item that is not a string) or silently mangles (an
undecodable base64 file) is a 400 here, with a message of the same style.

Pure: no I/O. Proportional to the body (files are decoded): callers on an event loop run it in
a thread when the body is large.
"""

from __future__ import annotations

import base64
import binascii
import math
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator import paths
from service.frontdoors.piston.errors import PistonError, bad_request
from service.frontdoors.piston.runtimes import PistonRuntime, resolve
from service.frontdoors.piston.settings import PistonSettings

ENCODINGS = ("base64", "hex", "utf8")
RESERVED_DIR = ".piston"
"""Where the door keeps its own files in the sandbox (stdin, outputs, metas): no request file
may be in it."""

MAX_NAME_BYTES = 4096
MAX_COMPONENT_BYTES = 255
_WHITESPACE = re.compile(r"\s+")
_LIMITS = ("memory_limit", "timeout", "cpu_time")
_STAGES = ("compile", "run")


@dataclass(frozen=True)
class SourceFile:
    """A request file: where it goes in the sandbox, its bytes, whether it was utf8."""

    name: str
    data: bytes
    utf8: bool


@dataclass(frozen=True)
class StageLimits:
    """One stage's limits: wall clock and CPU time in ms, memory in bytes."""

    timeout_ms: int
    cpu_time_ms: int
    memory_bytes: int


@dataclass(frozen=True)
class ExecuteJob:
    """A checked execute: the runtime, the files (the entry first), stdin, args, limits."""

    runtime: PistonRuntime
    files: tuple[SourceFile, ...]
    stdin: str
    args: tuple[str, ...]
    compile: StageLimits
    run: StageLimits

    @property
    def entry(self) -> SourceFile:
        """The entry point: Piston's first utf8 file, whatever its name."""
        return self.files[0]


def _falsy(value: object) -> bool:
    """JavaScript's falsiness for a JSON value: null, false, 0, ""; arrays and objects are
    truthy there (unlike Python's empty ones)."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    return False


def stage_limit(body: dict[str, Any], name: str, configured: int) -> int:
    """The value of the limit ``name`` (``run_timeout``...): ``configured`` when absent,
    falsy or -1; raises Piston's 400 when it is not a number, over ``configured`` or
    negative."""
    value = body.get(name)
    if _falsy(value):
        return configured
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"If specified, {name} must be a number")
    if value == -1:
        return configured
    if value > configured:
        raise bad_request(f"{name} cannot exceed the configured limit of {configured}")
    if value < 0:
        raise bad_request(f"{name} must be non-negative")
    return max(1, math.ceil(value))


def _limits(body: dict[str, Any], settings: PistonSettings) -> dict[str, StageLimits]:
    values: dict[str, int] = {}
    # Piston's order: each constraint for compile then run, so the first error is its first.
    for constraint in _LIMITS:
        for stage in _STAGES:
            name = f"{stage}_{constraint}"
            values[name] = stage_limit(body, name, settings.stage_limit(name))
    return {
        stage: StageLimits(
            timeout_ms=values[f"{stage}_timeout"],
            cpu_time_ms=values[f"{stage}_cpu_time"],
            memory_bytes=values[f"{stage}_memory_limit"],
        )
        for stage in _STAGES
    }


def _decode(content: str, encoding: str, where: str) -> bytes:
    """A file's bytes; raises 400 when ``content`` is not what ``encoding`` says."""
    if encoding == "utf8":
        try:
            return content.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(f"{where}.content is not valid UTF-8 text") from None
    if encoding == "hex":
        try:
            return bytes.fromhex(content)
        except ValueError:
            raise bad_request(f"{where}.content is not valid hex") from None
    text = _WHITESPACE.sub("", content)
    alphabet = b"-_" if ("-" in text or "_" in text) else None
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where}.content is not valid base64") from None


def check_name(name: str, where: str) -> str:
    """A request file's name as a path inside the job's directory (normalised by the judge's
    one path rule); raises 400 for a name that escapes it (absolute, ``..``: Piston's words), a
    control character, the door's own directory, or a name too long."""
    shown = name if len(name) <= 80 else name[:80] + "..."
    if name.startswith("/") or ".." in name.split("/"):
        raise bad_request(f'File path "{shown}" tries to escape parent directory')
    try:
        name.encode("utf-8")
        normal = paths.check_name(name)
    except UnicodeEncodeError:
        raise bad_request(f"{where}.name is not valid UTF-8 text") from None
    except ValueError as e:
        raise bad_request(f"{where}.name: {e}") from None
    parts = normal.split("/")
    if name.endswith("/"):
        raise bad_request(f'File path "{shown}" does not name a file')
    if parts[0] == RESERVED_DIR:
        raise bad_request(
            f'File path "{shown}" is in the directory {RESERVED_DIR}, kept for the judge'
        )
    if len(name.encode()) > MAX_NAME_BYTES or any(
        len(p.encode()) > MAX_COMPONENT_BYTES for p in parts
    ):
        raise bad_request(f'File path "{shown}" is too long')
    return normal


def _files(raw: list[dict[str, Any]], settings: PistonSettings) -> list[SourceFile]:
    if len(raw) > settings.max_files:
        raise bad_request(
            f"files cannot hold more than the configured limit of {settings.max_files}"
        )
    files: list[SourceFile] = []
    for i, doc in enumerate(raw):
        where = f"files[{i}]"
        name = doc.get("name")
        if _falsy(name):
            name = f"file{i}.code"
        if not isinstance(name, str):
            raise bad_request(f"{where}.name must be a string")
        encoding = doc.get("encoding")
        if encoding not in ENCODINGS:
            encoding = "utf8"  # as Piston: anything else is utf8
        content: str = doc["content"]
        # Every encoding takes at least one character per byte... and hex two: bound the work
        # before decoding anything.
        if len(content) > 4 * settings.max_file_size + 16:
            raise bad_request(
                f"{where} is larger than the configured limit of {settings.max_file_size} bytes"
            )
        data = _decode(content, encoding, where)
        if len(data) > settings.max_file_size:
            raise bad_request(
                f"{where} is larger than the configured limit of {settings.max_file_size} bytes"
            )
        files.append(SourceFile(check_name(name, where), data, encoding == "utf8"))
    # The entry point is the first utf8 file (Piston runs code_files[0]), whatever its name
    # (the registry's templates take any name: main, file0.code); it goes first.
    first = next(i for i, f in enumerate(files) if f.utf8)
    files.insert(0, files.pop(first))
    names: set[str] = set()
    for f in files:
        if f.name in names:
            raise bad_request(f'File path "{f.name}" is given twice')
        names.add(f.name)
    for f in files:
        parent = posixpath.dirname(f.name)
        while parent:
            if parent in names:
                raise bad_request(f'File path "{f.name}" is inside "{parent}", which is a file')
            parent = posixpath.dirname(parent)
    return files


def _args(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad_request("If specified, args must be an array of strings")
    for i, arg in enumerate(value):
        if not isinstance(arg, str):
            raise bad_request(f"args[{i}] must be a string")
        if "\0" in arg:
            raise bad_request(f"args[{i}] must not contain a NUL character")
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(f"args[{i}] is not valid UTF-8 text") from None
    return tuple(value)


def _stdin(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request("If specified, stdin must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("stdin is not valid UTF-8 text") from None
    return value


def parse_execute(
    body: object, runtimes: Sequence[PistonRuntime], settings: PistonSettings
) -> ExecuteJob:
    """The job a Piston execute body asks for; raises :class:`PistonError` 400.

    ``-1`` and falsy limits mean the configured ones; the runtime is resolved against
    ``runtimes`` (see :func:`resolve`).
    """
    doc: dict[str, Any] = body if isinstance(body, dict) else {}
    language = doc.get("language")
    if _falsy(language) or not isinstance(language, str):
        raise bad_request("language is required as a string")
    version = doc.get("version")
    if _falsy(version) or not isinstance(version, str):
        raise bad_request("version is required as a string")
    files = doc.get("files")
    if not isinstance(files, list):
        raise bad_request("files is required as an array")
    for i, f in enumerate(files):
        if not isinstance(f, dict) or not isinstance(f.get("content"), str):
            raise bad_request(f"files[{i}].content is required as a string")
    runtime = resolve(runtimes, language, version, strict=settings.strict_versions)
    if runtime is None:
        raise bad_request(f"{language}-{version} runtime is unknown")
    if not any(_falsy(f.get("encoding")) or f.get("encoding") == "utf8" for f in files):
        raise bad_request("files must include at least one utf8 encoded file")
    limits = _limits(doc, settings)
    return ExecuteJob(
        runtime=runtime,
        files=tuple(_files(files, settings)),
        stdin=_stdin(doc.get("stdin")),
        args=_args(doc.get("args")),
        compile=limits["compile"],
        run=limits["run"],
    )


__all__ = [
    "ENCODINGS",
    "RESERVED_DIR",
    "ExecuteJob",
    "PistonError",
    "SourceFile",
    "StageLimits",
    "check_name",
    "parse_execute",
    "stage_limit",
]
