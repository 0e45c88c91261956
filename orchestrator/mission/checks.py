"""Field checks of a mission (text, paths, URLs, keys) and its errors (400, 413) in the
mission's own terms."""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails

from orchestrator.errors import JudgeError
from orchestrator.paths import check_name
from orchestrator.paths import show as _show

TASK_ID_MACRO = "__TASK_ID__"
"""The macro every task gets: its index in ``tasks.task`` from 0. Missions may not set it."""

RESERVED_PAYLOAD_KEYS = frozenset({"id", "mission", "mission_result"})
"""Callback fields the judge fills itself; ``return.payload`` may not use them."""

PAYLOAD_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""What a ``return.payload`` key may look like: no spaces, controls or other characters that a
receiver's form parser could normalise into one of the reserved fields."""

MAX_COMPONENT_BYTES = 255  # as Linux's NAME_MAX
MAX_PATH_BYTES = 4096  # as Linux's PATH_MAX
MAX_PARALLEL = 64  # tasks.parallel's own bound; a server may allow fewer

_ROOT = "mission"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLOB_HASH = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# One C scan instead of a Python loop per character (every URL of every mission goes through
# it). ``\s`` of a str pattern is exactly ``str.isspace()``; checked on every code point when
# it replaced the loop.
_URL_BREAKER = re.compile(r"[\s\x00-\x1f\x7f]")  # whitespace, C0, DEL


class MissionInvalid(JudgeError):
    """A submitted mission is malformed or breaks a rule; the service answers 400.

    ``path`` and ``message`` describe the first problem (``str()`` is ``"path: message"``);
    ``errors`` lists every problem found, each ``{"path": ..., "message": ...}``.
    """

    def __init__(
        self, path: str, message: str, errors: Sequence[Mapping[str, str]] | None = None
    ) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        self.errors: list[dict[str, str]] = (
            [{"path": e["path"], "message": e["message"]} for e in errors]
            if errors
            else [{"path": path, "message": message}]
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a worker process (the service validates big missions there): rebuilt from
        # its parts, not from ``args``.
        return type(self), (self.path, self.message, self.errors)

    @classmethod
    def from_errors(cls, errors: Sequence[Mapping[str, str]]) -> MissionInvalid:
        """Build the exception from a non-empty list of ``{"path", "message"}`` problems."""
        if not errors:
            raise ValueError("MissionInvalid needs at least one error")
        return cls(errors[0]["path"], errors[0]["message"], errors)


class MissionTooLarge(MissionInvalid):
    """A mission asks for more work than :class:`MissionCaps` allow; the service answers 413."""


# --------------------------------------------------------------------------------------------
# Field checks. Each returns the value unchanged or raises ValueError with a message for users;
# pydantic turns that into an error located at the field (or dict key) being checked.


def _check_text(value: str) -> str:
    """Any string that can be encoded as UTF-8 (JSON allows lone surrogates; we do not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it contains a lone surrogate)") from None
    return value


def _check_arg(value: str) -> str:
    """A command-line argument: text without NUL, which no program can receive."""
    _check_text(value)
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _check_relative_path(value: str) -> str:
    """A path inside the sandbox, as given: the one path and control-character rule
    (``orchestrator.paths.check_name``) after the checks of every mission string, and no longer
    than Linux takes."""
    if not value:
        raise ValueError("must not be empty")
    _check_arg(value)
    check_name(value)
    if any(len(c.encode("utf-8")) > MAX_COMPONENT_BYTES for c in value.split("/")):
        raise ValueError(f"{_show(value)} has a component longer than {MAX_COMPONENT_BYTES} bytes")
    if len(value.encode("utf-8")) > MAX_PATH_BYTES:
        raise ValueError(f"{_show(value)} is longer than {MAX_PATH_BYTES} bytes")
    return value


def _check_file_name(value: str) -> str:
    """A relative path that names a file, so it cannot end with ``/``."""
    _check_relative_path(value)
    if value.endswith("/"):
        raise ValueError(f"{_show(value)} names a directory (it ends with '/'), not a file")
    return value


def _check_optional_file_name(value: str) -> str:
    """``""`` (no redirection) or a file name."""
    return _check_file_name(value) if value else value


def _check_http_url(value: str) -> None:
    if _URL_BREAKER.search(value):
        raise ValueError(f"URL {_show(value)} contains whitespace or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"URL {_show(value)} is malformed: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"URL {_show(value)} has no host")


def _check_callback_url(value: str) -> str:
    """An absolute http or https URL with a host."""
    _check_text(value)
    scheme, colon, _ = value.partition(":")
    if not colon or scheme.lower() not in ("http", "https"):
        raise ValueError(f"URL {_show(value)} must be an http or https URL")
    _check_http_url(value)
    return value


def _check_file_url(value: str) -> str:
    """Where a file comes from: ``http(s)://host/...``, ``data:...,...`` or ``blob:<hex hash>``."""
    _check_text(value)
    scheme, colon, rest = value.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("http", "https", "data", "blob"):
        raise ValueError(f"URL {_show(value)} must be an http, https, data: or blob: URL")
    if scheme in ("http", "https"):
        _check_http_url(value)
    elif scheme == "data":
        if "," not in rest:
            raise ValueError(f"data: URL {_show(value)} has no ',' before its data")
    elif not _BLOB_HASH.fullmatch(rest):
        raise ValueError(
            f"blob: URL {_show(value)} must be 'blob:' and a hash of 40 or 64 lowercase hex digits"
        )
    return value


def _check_macro_key(value: str) -> str:
    _check_text(value)
    if value == TASK_ID_MACRO:
        raise ValueError(f"{TASK_ID_MACRO} is set by the judge (the task's index) and is reserved")
    return value


def _check_payload_key(value: str) -> str:
    _check_text(value)
    if not PAYLOAD_KEY.fullmatch(value):
        raise ValueError(
            f"payload key {_show(value)} must be 1 to 64 of the characters A-Z a-z 0-9 _ . -"
        )
    if value in RESERVED_PAYLOAD_KEYS:
        raise ValueError(f"{value!r} is a callback field of the judge's own and is reserved")
    return value


def _check_scalar(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _check_text(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    raise ValueError("must be a string, number, boolean or null (payload is one level deep)")


def _check_unique_files(files: dict[str, str]) -> dict[str, str]:
    """Reject two names of one file, such as ``a`` and ``./a``."""
    seen: dict[str, str] = {}
    for name in files:
        key = posixpath.normpath(name)
        if key in seen:
            raise ValueError(f"{_show(seen[key])} and {_show(name)} name the same file")
        seen[key] = name
    return files


# An image reference as the engine parses it (the distribution project's grammar): optional
# registry host[:port]/, lower-case path components joined by "/", optional :tag, optional
# @algorithm:hex digest. Checked here so that a malformed one is the request's 400, not an
# engine error that reads as the node failing.
_REF_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_REF_DOMAIN = rf"(?:{_REF_HOST_PART}(?:\.{_REF_HOST_PART})*(?::[0-9]+)?/)"
_REF_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?:{_REF_DOMAIN}(?={_REF_COMPONENT}))?{_REF_COMPONENT}(?:/{_REF_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
MAX_IMAGE_REFERENCE = 255 + 1 + 128 + 1 + 7 + 1 + 128  # name, :tag, @sha512-ish:hex


def _check_image(value: str) -> str:
    """An image reference the engine would accept (``judge/cpp``, ``judge/cpp:latest``,
    ``registry:5000/team/img@sha256:...``); raises ``ValueError`` saying what is wrong."""
    if len(value) > MAX_IMAGE_REFERENCE or not _IMAGE_REFERENCE.fullmatch(value):
        raise ValueError(
            f"{_show(value)} is not an image reference (lower-case name components joined by "
            "'/', an optional registry host first, an optional :tag and @digest)"
        )
    ref = value.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    name = ref[: len(ref) - len(last)] + last.split(":", 1)[0]  # without its tag
    if len(name) > 255:
        raise ValueError(f"{_show(value)}: an image name is at most 255 characters")
    return value


Text = Annotated[str, AfterValidator(_check_text)]
Arg = Annotated[str, AfterValidator(_check_arg)]
RelativePath = Annotated[str, AfterValidator(_check_relative_path)]
FileName = Annotated[str, AfterValidator(_check_file_name)]
OptionalFileName = Annotated[str, AfterValidator(_check_optional_file_name)]
FileUrl = Annotated[str, AfterValidator(_check_file_url)]
CallbackUrl = Annotated[str, AfterValidator(_check_callback_url)]
ImageReference = Annotated[str, AfterValidator(_check_image)]
MacroKey = Annotated[str, AfterValidator(_check_macro_key)]
PayloadKey = Annotated[str, AfterValidator(_check_payload_key)]
Files = Annotated[dict[FileName, FileUrl], AfterValidator(_check_unique_files)]
Scalar = Annotated[
    str | int | float | bool | None,
    PlainValidator(_check_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean", "null"]}),
]


# --------------------------------------------------------------------------------------------
# Errors: pydantic's locations and messages in the mission's own terms.


def _render_path(prefix: str, loc: Sequence[int | str]) -> str:
    """``("prepare", "execute", 0, "memory_limit")`` -> ``mission.prepare.execute[0].memory_limit``.

    Dict keys that are not identifiers are written ``["main.c"]``; pydantic's ``[key]`` marker
    (an error in the key itself) is dropped, so the path names the key.
    """
    path = prefix
    last = len(loc) - 1
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]" and i == last and i > 0:
            continue
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}"
        else:
            path += f"[{_quote_key(part)}]"
    return path


def _quote_key(key: str) -> str:
    """The key as a JSON string; non-ASCII kept readable unless it cannot be encoded."""
    quoted = json.dumps(key, ensure_ascii=False)
    try:
        quoted.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(key)
    return quoted


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    got = error.get("input")
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r}"
    simple = {
        "missing": "is required",
        "int_type": "must be an integer",
        "string_type": "must be a string",
        "bool_type": "must be a boolean (true or false)",
        "list_type": "must be an array",
        "dict_type": "must be an object",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
    }
    if kind in simple:
        return simple[kind]
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']} (got {got!r})"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']} (got {got!r})"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    return error["msg"]


def _errors_of(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    return [{"path": _render_path(prefix, e["loc"]), "message": _message(e)} for e in exc.errors()]
