"""The mission: its wire format, its validation, its macros and its normalised echo.

A mission arrives as a JSON object (or the JSON string of the ``mission`` form field).
:func:`parse_mission` is the one entry point: it returns a :class:`Mission` or raises
:class:`MissionInvalid` listing every problem, each with the path of the offending field in the
form ``mission.prepare.execute[0].memory_limit``. A mission it accepts cannot fail later for a
reason that was knowable at submission: paths are relative and stay inside the sandbox, limits
are in range, file URLs have a scheme the fetcher serves, and every task's macro-expanded
executes and file names obey the same rules.

Macros (:func:`expand`) are plain string replacement, longest key first, in one pass.
:func:`normalise` gives the mission as the callback echoes it, with every default filled in.

A mission's work is bounded before anything proportional to it is done: :class:`MissionCaps`
limits the planned executes (tasks x executes, counted, not expanded), the bytes the task
executes and file names come to after macro expansion (computed from the macros' occurrences and
value lengths, not by expanding), macro counts and value sizes and the JSON nesting depth. A mission
over a cap is refused with :class:`MissionTooLarge` (413) naming the field. Everything here is
proportional to the mission: callers on an event loop run it in a thread.
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from orchestrator.errors import JudgeError

__all__ = [
    "RESERVED_PAYLOAD_KEYS",
    "TASK_ID_MACRO",
    "Execute",
    "Interactor",
    "Mission",
    "MissionCaps",
    "MissionInvalid",
    "MissionTooLarge",
    "Record",
    "Return",
    "Scope",
    "Stage",
    "Task",
    "Tasks",
    "expand",
    "expand_execute",
    "expand_task_files",
    "has_control",
    "load_json",
    "normalise",
    "parse_mission",
    "plans_little",
    "task_macros",
]

TASK_ID_MACRO = "__TASK_ID__"
"""The macro every task gets: its index in ``tasks.task`` from 0. Missions may not set it."""

RESERVED_PAYLOAD_KEYS = frozenset({"id", "mission", "mission_result"})
"""Callback fields the judge fills itself; ``return.payload`` may not use them."""

PAYLOAD_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""What a ``return.payload`` key may look like: no spaces, controls or other characters that a
receiver's form parser could normalise into one of the reserved fields."""

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_PARALLEL = 64  # tasks.parallel's own bound; a server may allow fewer

_ROOT = "mission"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLOB_HASH = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# One C scan instead of a Python loop per character (every path and URL of every mission goes
# through these). ``\s`` of a str pattern is exactly ``str.isspace()``; both checked on every
# code point when these replaced the loops.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1
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

    @classmethod
    def from_errors(cls, errors: Sequence[Mapping[str, str]]) -> MissionInvalid:
        """Build the exception from a non-empty list of ``{"path", "message"}`` problems."""
        if not errors:
            raise ValueError("MissionInvalid needs at least one error")
        return cls(errors[0]["path"], errors[0]["message"], errors)


class MissionTooLarge(MissionInvalid):
    """A mission asks for more work than :class:`MissionCaps` allow; the service answers 413."""


@dataclass(frozen=True)
class MissionCaps:
    """How much work one mission may ask for; checked before validation and expansion.

    ``max_executes``: executes planned in all (prepare + tasks x task executes + final), and
    tasks. ``max_expanded_bytes``: UTF-8 bytes of every task's executes' strings (command items,
    names, redirections, scope paths) and file names, after macro expansion, summed over tasks.
    ``max_macros_per_task``, ``max_macro_key_bytes`` and ``max_macro_value_bytes``: per task, its
    macro count and each key's and value's size (keys are matched at every position of every
    string, so their count and length bound the cost of expansion). ``max_json_depth``: nesting
    of arrays and objects in the mission document.
    """

    max_executes: int = 10_000
    max_expanded_bytes: int = 8 * 1024 * 1024
    max_macros_per_task: int = 256
    max_macro_value_bytes: int = 64 * 1024
    max_json_depth: int = 32
    max_macro_key_bytes: int = 32

    @classmethod
    def unlimited(cls) -> MissionCaps:
        """No caps: for missions read back from storage, which were accepted when submitted."""
        n = sys.maxsize
        return cls(n, n, n, n, n, n)


DEFAULT_CAPS = MissionCaps()


# --------------------------------------------------------------------------------------------
# Field checks. Each returns the value unchanged or raises ValueError with a message for users;
# pydantic turns that into an error located at the field (or dict key) being checked.


def _show(value: str, limit: int = 80) -> str:
    """The value quoted for a message, shortened when long; never raises on odd characters."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


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


def has_control(value: str) -> bool:
    """Whether ``value`` holds a C0/C1 control character or DEL (newlines, escapes, NUL...)."""
    return _CONTROL.search(value) is not None


def _check_relative_path(value: str) -> str:
    """A path inside the sandbox: relative POSIX, no ``..``, not the sandbox root, size-capped,
    no control characters (a name with a newline or an escape breaks logs, listings and tools)."""
    if not value:
        raise ValueError("must not be empty")
    _check_arg(value)
    if has_control(value):
        raise ValueError(f"{_show(value)} contains a control character")
    if value.startswith("/"):
        raise ValueError(f"{_show(value)} must be a relative path, not an absolute one")
    components = value.split("/")
    if ".." in components:
        raise ValueError(f"{_show(value)} must not contain a '..' component")
    if posixpath.normpath(value) == ".":
        raise ValueError(f"{_show(value)} names the sandbox itself, not a path inside it")
    if any(len(c.encode("utf-8")) > MAX_COMPONENT_BYTES for c in components):
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


Text = Annotated[str, AfterValidator(_check_text)]
Arg = Annotated[str, AfterValidator(_check_arg)]
RelativePath = Annotated[str, AfterValidator(_check_relative_path)]
FileName = Annotated[str, AfterValidator(_check_file_name)]
OptionalFileName = Annotated[str, AfterValidator(_check_optional_file_name)]
FileUrl = Annotated[str, AfterValidator(_check_file_url)]
CallbackUrl = Annotated[str, AfterValidator(_check_callback_url)]
MacroKey = Annotated[str, AfterValidator(_check_macro_key)]
PayloadKey = Annotated[str, AfterValidator(_check_payload_key)]
Files = Annotated[dict[FileName, FileUrl], AfterValidator(_check_unique_files)]
Scalar = Annotated[
    str | int | float | bool | None,
    PlainValidator(_check_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean", "null"]}),
]


# --------------------------------------------------------------------------------------------
# The models. Strict: no coercion ("65536" is not an int, 1 is not a bool); unknown keys are
# errors named by their path. Fields with a wire name that is a Python keyword use an alias.


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Record(_Model):
    """Which redirected output to report back: the first ``stdout``/``stderr`` bytes."""

    enable: bool = True
    stdout: Annotated[int, Field(ge=0, le=4096)] = 1024
    stderr: Annotated[int, Field(ge=0, le=4096)] = 1024


class Scope(_Model):
    """Run in a fresh sandbox; ``import`` paths come in by last component, ``export`` go back."""

    enable: bool = False
    import_: list[RelativePath] = Field(default_factory=list, alias="import")
    export: list[RelativePath] = Field(default_factory=list)

    @field_validator("import_")
    @classmethod
    def _imports_arrive_apart(cls, value: list[str]) -> list[str]:
        arrivals: dict[str, str] = {}
        for path in value:
            name = posixpath.basename(posixpath.normpath(path))
            if name in arrivals:
                raise ValueError(
                    f"{_show(arrivals[name])} and {_show(path)} would both arrive as {_show(name)}"
                )
            arrivals[name] = path
        return value


class _Program(_Model):
    """What an execute and its interactor both are: a command and its limits (memory KiB, CPU
    time ms, output KiB). Its fields come first in both, in this order."""

    command: Annotated[list[Arg], Field(min_length=1)]
    memory_limit: Annotated[int, Field(ge=1, le=2_097_152)] = 65_536
    time_limit: Annotated[int, Field(ge=1, le=60_000)] = 60_000
    output_limit: Annotated[int, Field(ge=1, le=262_144)] = 262_144

    @field_validator("command")
    @classmethod
    def _program_named(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("the program, command[0], must not be empty")
        return value


class _Named(_Model):
    """An execute's ``name``. A base of its own because pydantic orders fields base first (the
    last base's first): ``Execute(_Program, _Named)`` keeps ``name`` the first key of an
    execute in the schema and in the echo, where it stood before ``_Program`` existed."""

    name: Text = ""


class Interactor(_Program):
    """The program an interactive execute talks to: its stdout is the execute's stdin and the
    other way round. It runs as another user; ``private`` files are readable by it alone."""

    meta: FileName = "interactor.meta"
    stderr: OptionalFileName = ""
    private: list[FileName] = Field(default_factory=list, max_length=64)


class Execute(_Program, _Named):
    """One command and its limits (memory KiB, CPU time ms, output KiB), files and options."""

    meta: FileName = "meta"
    stdin: OptionalFileName = ""
    stdout: OptionalFileName = ""
    stderr: OptionalFileName = ""
    record: Record = Field(default_factory=Record)
    scope: Scope = Field(default_factory=Scope)
    interactor: Interactor | None = None

    @model_validator(mode="after")
    def _pipes_are_the_interactors(self) -> Execute:
        if self.interactor is None:
            return self
        if self.stdin or self.stdout:
            raise ValueError(
                "'stdin' and 'stdout' must be empty with an interactor (they are its pipes)"
            )
        if posixpath.normpath(self.meta) == posixpath.normpath(self.interactor.meta):
            raise ValueError(f"the execute and its interactor both write meta {_show(self.meta)}")
        theirs = {posixpath.normpath(p) for p in self.interactor.private}
        if self.interactor.stderr:
            theirs.add(posixpath.normpath(self.interactor.stderr))
        for field in ("stderr", "meta"):
            mine = getattr(self, field)
            if mine and posixpath.normpath(mine) in theirs:
                raise ValueError(
                    f"{field} {_show(mine)} is the interactor's (its stderr or a private file)"
                )
        return self

    def dump(self) -> dict[str, Any]:
        """The execute as JSON, without ``interactor`` when it has none."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Stage(_Model):
    """``prepare`` or ``final``: files fetched (name -> URL), then executes run in order."""

    file: Files = Field(default_factory=dict)
    execute: list[Execute] = Field(default_factory=list)


class Task(_Model):
    """One task: its files (names may use macros) and its macros (key -> replacement)."""

    file: Files = Field(default_factory=dict)
    macro: dict[MacroKey, Text] = Field(default_factory=dict)


class Tasks(_Model):
    """The tasks, and the executes each of them runs after its macros are applied.

    ``parallel`` (an extension of the seed's format): how many tasks may run at once; 1, the
    default, is the seed's sequential order. More than 1 only when every execute is scoped.
    """

    task: list[Task] = Field(default_factory=list)
    execute: list[Execute] = Field(default_factory=list)
    parallel: Annotated[int, Field(ge=1, le=MAX_PARALLEL)] = 1


class Return(_Model):
    """Where the callback goes, the extra fields it carries, and its encoding."""

    url: CallbackUrl
    payload: dict[PayloadKey, Scalar] = Field(default_factory=dict)
    format: Literal["form", "json"] = "form"


class Mission(_Model):
    """A whole mission. Build it with :func:`parse_mission`, which also checks the macros.

    Without ``return`` the mission has no callback: its result is read by polling (or waiting).
    """

    return_: Return | None = Field(None, alias="return")
    prepare: Stage = Field(default_factory=Stage)
    tasks: Tasks = Field(default_factory=Tasks)
    final: Stage = Field(default_factory=Stage)
    image: Annotated[Text, Field(min_length=1)] | None = None
    # A language of the server's registry (id or alias): the server sets ``image`` from it.
    language: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    runtime: Annotated[Text, Field(min_length=1)] | None = None
    tick: bool = False


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


# --------------------------------------------------------------------------------------------
# Macros.


_TRIE_MAX_KEY = 512  # deeper tries would nest regex groups past what the compiler takes


def _trie_regex(keys: Iterable[str]) -> str:
    """A regex matching the longest of ``keys`` at a position, shaped as their prefix tree.

    A flat alternation tries every key at every position (keys sharing a long prefix make that
    quadratic); the tree tries each character once, so a position costs at most the longest
    key's length. Greedy optional groups make the longest key win, as the flat form ordered by
    length did.
    """
    trie: dict[str, Any] = {}
    for key in keys:
        node = trie
        for ch in key:
            node = node.setdefault(ch, {})
        node[""] = {}  # marks the end of a key ("" is never a character)

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        alt = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{alt})?" if "" in node else alt

    return build(trie)


@functools.lru_cache(maxsize=256)
def _macro_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    if max(map(len, keys)) > _TRIE_MAX_KEY:
        return re.compile("|".join(re.escape(k) for k in keys))
    return re.compile(_trie_regex(keys))


_SCAN_CHUNK = 4 * 1024


def _matches(pattern: re.Pattern[str], text: str, longest: int) -> Iterator[re.Match[str]]:
    """The matches ``pattern.finditer(text)`` gives, found window by window.

    One ``finditer`` over megabytes without a match is one long C call that holds the GIL and so
    stalls the event loop of the thread that is waiting; windows of ``_SCAN_CHUNK`` characters
    (plus ``longest``, the longest key, so no match is cut short) keep each call short.
    """
    pos, end = 0, len(text)
    while pos < end:
        window = min(end, pos + _SCAN_CHUNK + longest)
        match = pattern.search(text, pos, window)
        if match is not None and match.start() < pos + _SCAN_CHUNK:
            yield match
            pos = max(match.end(), match.start() + 1)
        else:
            pos += _SCAN_CHUNK


def expand(text: str, macros: Mapping[str, str]) -> str:
    """Replace every macro key in ``text`` by its value, in one left-to-right pass.

    At each position the longest key that matches wins; a replacement is never scanned again,
    so a value that contains a key stays as it is. Empty keys are ignored. Never raises.
    """
    keys = tuple(sorted((k for k in macros if k), key=lambda k: (-len(k), k)))
    if not keys or not text:
        return text
    pieces: list[str] = []
    done = 0
    for match in _matches(_macro_pattern(keys), text, len(keys[0])):
        pieces += (text[done : match.start()], macros[match.group(0)])
        done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def task_macros(task_index: int, task: Task) -> dict[str, str]:
    """The macros of the task at ``task_index``: its own plus ``__TASK_ID__`` = the index."""
    return {**task.macro, TASK_ID_MACRO: str(task_index)}


def expand_execute(
    execute: Execute, macros: Mapping[str, str], *, path: str = "execute"
) -> Execute:
    """``execute`` with the macros applied to each of its strings, validated again.

    The strings are the command items, ``name``, ``meta``, ``stdin``, ``stdout``, ``stderr``,
    the scope's ``import``/``export`` paths and the interactor's command, ``meta``, ``stderr``
    and ``private`` paths. When no macro occurs, ``execute`` itself is returned.
    Raises :class:`MissionInvalid` (paths under ``path``) when an expanded value breaks a rule,
    e.g. a macro value that puts ``..`` into a file name; never for a mission that
    :func:`parse_mission` accepted.
    """
    raw = execute.model_dump(by_alias=True, exclude_none=True)
    done = dict(raw)
    for key in ("name", "meta", "stdin", "stdout", "stderr"):
        done[key] = expand(raw[key], macros)
    done["command"] = [expand(arg, macros) for arg in raw["command"]]
    if "interactor" in raw:
        inter = dict(raw["interactor"])
        inter["command"] = [expand(arg, macros) for arg in inter["command"]]
        inter["meta"] = expand(inter["meta"], macros)
        inter["stderr"] = expand(inter["stderr"], macros)
        inter["private"] = [expand(p, macros) for p in inter["private"]]
        done["interactor"] = inter
    done["scope"] = {
        **raw["scope"],
        "import": [expand(p, macros) for p in raw["scope"]["import"]],
        "export": [expand(p, macros) for p in raw["scope"]["export"]],
    }
    if done == raw:
        return execute
    try:
        return Execute.model_validate(done)
    except ValidationError as exc:
        errors = _errors_of(exc, path)
        for error in errors:
            error["message"] = f"after macro expansion, {error['message']}"
        raise MissionInvalid.from_errors(errors) from exc


def expand_task_files(
    task: Task, macros: Mapping[str, str], *, path: str = "file"
) -> dict[str, str]:
    """The task's files (name -> URL) with the macros applied to the names, not to the URLs.

    Raises :class:`MissionInvalid` (paths ``<path>.<name>``, named as submitted) when an
    expanded name breaks the path rules or two names come to name the same file; never for a
    mission that :func:`parse_mission` accepted.
    """
    files: dict[str, str] = {}
    owners: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for name, url in task.file.items():
        expanded = expand(name, macros)
        where = _render_path(path, [name])
        try:
            _check_file_name(expanded)
        except ValueError as exc:
            errors.append({"path": where, "message": f"after macro expansion, {exc}"})
            continue
        key = posixpath.normpath(expanded)
        if key in owners:
            errors.append(
                {
                    "path": where,
                    "message": f"after macro expansion, {_show(name)} and "
                    f"{_show(owners[key])} name the same file {_show(expanded)}",
                }
            )
            continue
        owners[key] = name
        files[expanded] = url
    if errors:
        raise MissionInvalid.from_errors(errors)
    return files


# --------------------------------------------------------------------------------------------
# Entry points.


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str | bytes | bytearray) -> object:
    """Parse a mission's JSON text; raises :class:`MissionInvalid` at path ``mission``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MissionInvalid(
            _ROOT, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise MissionInvalid(_ROOT, "is not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # NaN/Infinity, integers too long, undecodable bytes
        raise MissionInvalid(_ROOT, f"is not valid JSON: {exc}") from exc


def _check_depth(doc: object, limit: int) -> None:
    """Refuse arrays and objects nested deeper than ``limit``; iterative, stops at the limit."""
    stack: list[tuple[object, tuple[int | str, ...]]] = [(doc, ())]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, dict):
            children: Iterable[tuple[int | str, object]] = node.items()
        elif isinstance(node, list):
            children = enumerate(node)
        else:
            continue
        if len(loc) >= limit:
            raise MissionInvalid(
                _render_path(_ROOT, loc), f"is nested more than {limit} levels deep"
            )
        for key, child in children:
            if isinstance(child, dict | list):
                stack.append((child, (*loc, key if isinstance(key, int) else str(key))))


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _execute_strings(execute: object) -> list[str]:
    """The strings of a raw (unvalidated) execute that macros apply to; odd types are skipped
    (validation reports them)."""
    if not isinstance(execute, dict):
        return []
    out = [execute[k] for k in ("name", "meta", "stdin", "stdout", "stderr") if k in execute]
    command = execute.get("command")
    if isinstance(command, list):
        out += command
    scope = execute.get("scope")
    if isinstance(scope, dict):
        for key in ("import", "export"):
            if isinstance(scope.get(key), list):
                out += scope[key]
    return [s for s in out if isinstance(s, str)]


def _list_at(doc: object, *keys: str) -> list[Any]:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc if isinstance(doc, list) else []


def plans_little(doc: object, max_executes: int) -> bool:
    """Whether a raw (unvalidated) mission document has no tasks and at most ``max_executes``
    executes: then validating it and building its echo are proportional to the document alone,
    with nothing expanded. Looks at three lists only; never raises."""
    if _list_at(doc, "tasks", "task"):
        return False
    executes = (
        len(_list_at(doc, "prepare", "execute"))
        + len(_list_at(doc, "tasks", "execute"))
        + len(_list_at(doc, "final", "execute"))
    )
    return executes <= max_executes


def _expanded_bytes(strings: Sequence[str], macros: Mapping[str, str]) -> int:
    """UTF-8 bytes of ``strings`` once ``macros`` are applied, computed without expanding:
    each match of a key (the same matches :func:`expand` makes) adds its value's size minus its
    own. Costs one scan of the strings."""
    keys = tuple(sorted((k for k in macros if k), key=lambda k: (-len(k), k)))
    total = sum(_utf8_len(s) for s in strings)
    if not keys:
        return total
    delta = {k: _utf8_len(macros[k]) - _utf8_len(k) for k in keys}
    pattern = _macro_pattern(keys)
    for text in strings:
        for match in _matches(pattern, text, len(keys[0])):
            total += delta[match.group(0)]
    return total


def _check_caps(doc: object, caps: MissionCaps) -> None:
    """Refuse a raw mission document that asks for more work than ``caps``, before validation.

    Work here is bounded by the document's size (the expanded size is computed only once the
    unexpanded one fits the cap). Raises :class:`MissionInvalid` for nesting and
    :class:`MissionTooLarge` for the other caps, each naming the field.
    """
    _check_depth(doc, caps.max_json_depth)
    tasks = _list_at(doc, "tasks", "task")
    task_executes = _list_at(doc, "tasks", "execute")
    planned = (
        len(_list_at(doc, "prepare", "execute"))
        + len(tasks) * len(task_executes)
        + len(_list_at(doc, "final", "execute"))
    )
    if len(tasks) > caps.max_executes:
        raise MissionTooLarge(
            f"{_ROOT}.tasks.task",
            f"has {len(tasks)} tasks; a mission may have at most {caps.max_executes}",
        )
    if planned > caps.max_executes:
        raise MissionTooLarge(
            f"{_ROOT}.tasks",
            f"plans {planned} executes ({len(tasks)} tasks x {len(task_executes)} executes, "
            f"plus prepare and final); a mission may plan at most {caps.max_executes}",
        )
    templates = [s for ex in task_executes for s in _execute_strings(ex)]
    template_bytes = sum(_utf8_len(s) for s in templates)
    for i, task in enumerate(tasks):
        macro = task.get("macro") if isinstance(task, dict) else None
        if not isinstance(macro, dict):
            continue
        where = f"{_ROOT}.tasks.task[{i}].macro"
        if len(macro) > caps.max_macros_per_task:
            raise MissionTooLarge(
                where,
                f"has {len(macro)} macros; a task may have at most {caps.max_macros_per_task}",
            )
        for key, value in macro.items():
            if _utf8_len(str(key)) > caps.max_macro_key_bytes:
                raise MissionTooLarge(
                    _render_path(where, [str(key)]),
                    f"is a key longer than {caps.max_macro_key_bytes} bytes",
                )
            if isinstance(value, str) and _utf8_len(value) > caps.max_macro_value_bytes:
                raise MissionTooLarge(
                    _render_path(where, [str(key)]),
                    f"is longer than {caps.max_macro_value_bytes} bytes",
                )
    # Unexpanded, every task repeats the executes: that bounds the scan below.
    files = [
        list(task["file"]) if isinstance(task, dict) and isinstance(task.get("file"), dict) else []
        for task in tasks
    ]
    unexpanded = len(tasks) * template_bytes + sum(_utf8_len(n) for names in files for n in names)
    too_big = (
        f"the task executes and file names, repeated for each of the {len(tasks)} tasks, "
        f"come to more than {caps.max_expanded_bytes} bytes"
    )
    if unexpanded > caps.max_expanded_bytes:
        raise MissionTooLarge(f"{_ROOT}.tasks", too_big)
    total = 0
    for i, task in enumerate(tasks):
        macro = task.get("macro") if isinstance(task, dict) else None
        macros = {TASK_ID_MACRO: str(i)}
        if isinstance(macro, dict):
            macros.update({k: v for k, v in macro.items() if isinstance(v, str)})
        total += _expanded_bytes([*templates, *files[i]], macros)
        if total > caps.max_expanded_bytes:
            raise MissionTooLarge(f"{_ROOT}.tasks.task[{i}]", f"after macro expansion, {too_big}")


_LISTS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("prepare", "execute", Execute),
    ("tasks", "task", Task),
    ("tasks", "execute", Execute),
    ("final", "execute", Execute),
)


def _validate_lists(doc: object) -> tuple[object, list[dict[str, str]]]:
    """``doc`` with its long lists (executes, tasks) validated item by item, and their errors.

    Validating the whole mission is one call that holds the GIL throughout (a fraction of a
    second for thousands of executes, during which the event loop cannot run); one call per
    item lets it run in between. The validated items replace the raw ones (models are accepted
    as they are); an invalid item is left out and its errors are returned.
    """
    if not isinstance(doc, dict):
        return doc, []
    doc = dict(doc)
    errors: list[dict[str, str]] = []
    for outer_key, key, model in _LISTS:
        outer = doc.get(outer_key)
        if not isinstance(outer, dict) or not isinstance(outer.get(key), list):
            continue
        items: list[BaseModel] = []
        for i, item in enumerate(outer[key]):
            try:
                items.append(model.model_validate(item))
            except ValidationError as exc:
                errors += _errors_of(exc, f"{_ROOT}.{outer_key}.{key}[{i}]")
        doc[outer_key] = {**outer, key: items}
    return doc, errors


def parse_mission(data: object, caps: MissionCaps = DEFAULT_CAPS) -> Mission:
    """Validate a mission given as a JSON object (a dict) or as its JSON text.

    Returns the :class:`Mission` with every default filled in. Raises :class:`MissionInvalid`
    listing every problem: wrong types (no coercion), values out of range, unknown keys,
    missing ``url`` (when ``return`` is given) or ``command``, unsafe or empty paths,
    unsupported URLs, reserved payload keys, a task that sets ``__TASK_ID__``, and — per task —
    macro-expanded execute strings or file names that break those rules. A JSON syntax error is
    reported at path ``mission`` with its line and column. A mission over ``caps`` raises
    :class:`MissionTooLarge` (or :class:`MissionInvalid` for its nesting) before it is validated
    or expanded. Proportional to the mission's size: run it off the event loop.
    """
    if isinstance(data, str | bytes | bytearray):
        data = load_json(data)
    _check_caps(data, caps)
    data, errors = _validate_lists(data)
    try:
        mission = Mission.model_validate(data)
    except ValidationError as exc:
        raise MissionInvalid.from_errors(errors + _errors_of(exc, _ROOT)) from exc
    if errors:
        raise MissionInvalid.from_errors(errors)
    if mission.tasks.parallel > 1 and not all(e.scope.enable for e in mission.tasks.execute):
        raise MissionInvalid.from_errors(
            [
                {
                    "path": f"{_ROOT}.tasks.parallel",
                    "message": "tasks run in parallel only when every execute of tasks.execute "
                    "is scoped (scope.enable true)",
                }
            ]
        )
    for i, task in enumerate(mission.tasks.task):
        macros = task_macros(i, task)
        base = f"{_ROOT}.tasks.task[{i}]"
        try:
            expand_task_files(task, macros, path=f"{base}.file")
        except MissionInvalid as exc:
            errors.extend(exc.errors)
        for j, execute in enumerate(mission.tasks.execute):
            try:
                expand_execute(execute, macros, path=f"{base}.execute[{j}]")
            except MissionInvalid as exc:
                errors.extend(exc.errors)
    if errors:
        raise MissionInvalid.from_errors(errors)
    return mission


def _stage(stage: Stage) -> dict[str, Any]:
    return {
        "file": dict(stage.file),
        "execute": [e.dump() for e in stage.execute],
    }


def normalise(mission: Mission) -> dict[str, Any]:
    """The mission as the callback echoes it: every default filled in, JSON-ready.

    Keys ``return`` (when the mission has one), ``prepare``, ``tasks``, ``final``, ``tick`` (and
    ``image``, ``language`` and ``runtime`` when set); ``return.format`` only when it is not
    ``"form"``. Each entry of ``tasks.task`` also gets ``execute``: the ``tasks.execute`` list
    with that task's macros applied. Raises :class:`MissionInvalid` only for a mission that did
    not come from :func:`parse_mission` and whose macros break a rule.
    """
    ret: dict[str, Any] | None = None
    if mission.return_ is not None:
        ret = {"url": mission.return_.url, "payload": dict(mission.return_.payload)}
        if mission.return_.format != "form":
            ret["format"] = mission.return_.format
    tasks: list[dict[str, Any]] = []
    for i, task in enumerate(mission.tasks.task):
        macros = task_macros(i, task)
        base = f"{_ROOT}.tasks.task[{i}]"
        tasks.append(
            {
                "file": dict(task.file),
                "macro": dict(task.macro),
                "execute": [
                    expand_execute(e, macros, path=f"{base}.execute[{j}]").dump()
                    for j, e in enumerate(mission.tasks.execute)
                ],
            }
        )
    out: dict[str, Any] = {} if ret is None else {"return": ret}
    out |= {
        "prepare": _stage(mission.prepare),
        "tasks": {
            "task": tasks,
            "execute": [e.dump() for e in mission.tasks.execute],
            # The extension appears only when used, so seed missions echo as the seed shows.
            **({"parallel": mission.tasks.parallel} if mission.tasks.parallel > 1 else {}),
        },
        "final": _stage(mission.final),
    }
    if mission.image is not None:
        out["image"] = mission.image
    if mission.language is not None:
        out["language"] = mission.language
    if mission.runtime is not None:
        out["runtime"] = mission.runtime
    out["tick"] = mission.tick
    return out
