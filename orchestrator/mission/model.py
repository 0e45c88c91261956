"""The mission's models (pydantic, strict): what a mission may say and its defaults."""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from orchestrator.mission.checks import (
    MAX_PARALLEL,
    Arg,
    CallbackUrl,
    FileName,
    Files,
    ImageReference,
    MacroKey,
    OptionalFileName,
    PayloadKey,
    RelativePath,
    Scalar,
    Text,
)
from orchestrator.paths import show as _show

# --------------------------------------------------------------------------------------------
# The models. Strict: no coercion ("65536" is not an int, 1 is not a bool); unknown keys are
# errors named by their path. Fields with a wire name that is a Python keyword use an alias.


# Bounds of the per-execute limit extensions (wall_time_limit ms, process_limit, file_size_limit
# KiB, stack_limit KiB). The real time allows up to three times the largest CPU time limit; a
# stack below 64 KiB cannot even start a dynamically linked program.
MAX_WALL_TIME_MS = 180_000
MAX_PROCESSES = 4096
MAX_FILE_SIZE_KIB = 1_048_576
MIN_STACK_KIB = 64
MAX_STACK_KIB = 2_097_152


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Record(_Model):
    """Which redirected output to report back: the first ``stdout``/``stderr`` bytes (and
    ``merged``: of the merged file)."""

    enable: bool = True
    stdout: Annotated[int, Field(ge=0, le=4096)] = 1024
    stderr: Annotated[int, Field(ge=0, le=4096)] = 1024
    # The merged file's (an execute with ``merged``; absent: 1024). Up to twice a stream's
    # record, since it holds both.
    merged: Annotated[int, Field(ge=0, le=2 * 4096)] | None = None


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
    def _program_named(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value[0]:
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


class Compare(_Model):
    """A check without a process (an extension of the seed's format): the judge compares the
    mission sandbox's ``output`` with ``answer`` byte for byte, as ``cmp`` would."""

    output: RelativePath
    answer: RelativePath


def _command_optional_with_compare(schema: dict[str, Any]) -> None:
    required = schema.get("required")
    if isinstance(required, list) and "command" in required:
        required.remove("command")
        if not required:
            del schema["required"]


class Execute(_Program, _Named):
    """One command and its limits (memory KiB, CPU time ms, output KiB), files and options;
    or, with ``compare`` instead of ``command``, a comparison of two files (no process)."""

    model_config = ConfigDict(json_schema_extra=_command_optional_with_compare)

    # Required (a missing one is reported as such) unless ``compare`` is given, then None.
    command: Annotated[list[Arg], Field(min_length=1)] | None  # type: ignore[assignment]
    meta: FileName = "meta"
    stdin: OptionalFileName = ""
    stdout: OptionalFileName = ""
    stderr: OptionalFileName = ""
    record: Record = Field(default_factory=Record)
    scope: Scope = Field(default_factory=Scope)
    interactor: Interactor | None = None
    # Extensions of the seed's format; absent (None) keeps its rules: real time 1.5 x
    # time_limit, no count of processes (the sandbox's pids fence), the largest file
    # output_limit, a stack as large as memory_limit (at least 8 MiB). See docs/missions.md.
    wall_time_limit: Annotated[int, Field(ge=1, le=MAX_WALL_TIME_MS)] | None = None
    process_limit: Annotated[int, Field(ge=1, le=MAX_PROCESSES)] | None = None
    file_size_limit: Annotated[int, Field(ge=0, le=MAX_FILE_SIZE_KIB)] | None = None
    stack_limit: Annotated[int, Field(ge=MIN_STACK_KIB, le=MAX_STACK_KIB)] | None = None
    # Another extension: a file that gets stdout and stderr together, in the order the command
    # wrote them (each stream still goes to its own file as well). Absent: no such file.
    merged: FileName | None = None

    @property
    def merged_record_bytes(self) -> int:
        """How many bytes of the merged file the result reports (0 without one)."""
        if self.merged is None or not self.record.enable:
            return 0
        return 1024 if self.record.merged is None else self.record.merged

    @model_validator(mode="after")
    def _merged_is_a_file_of_its_own(self) -> Execute:
        if self.merged is None:
            return self
        if self.interactor is not None:
            raise ValueError("'merged' cannot be used with an interactor (its stdout is a pipe)")
        mine = posixpath.normpath(self.merged)
        for field in ("stdout", "stderr", "meta"):
            other = getattr(self, field)
            if other and posixpath.normpath(other) == mine:
                raise ValueError(f"'merged' must be a file of its own, not the {field} file")
        return self

    # An extension: compare two files instead of running a command (docs/missions.md).
    compare: Compare | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_command_with_compare(cls, data: Any) -> Any:
        if isinstance(data, dict) and "compare" in data and "command" not in data:
            return {**data, "command": None}
        return data

    @model_validator(mode="after")
    def _command_or_compare(self) -> Execute:
        if self.compare is None:
            if self.command is None:
                raise ValueError("'command' is required (or 'compare', to compare two files)")
            return self
        if self.command is not None:
            raise ValueError("an execute has either 'command' or 'compare', not both")
        given = [
            key
            for key, value in (
                ("stdin", self.stdin),
                ("stdout", self.stdout),
                ("stderr", self.stderr),
                ("merged", self.merged),
                ("interactor", self.interactor),
                ("scope", self.scope.enable or None),
            )
            if value
        ]
        if given:
            raise ValueError(
                f"'compare' runs no process: {', '.join(repr(k) for k in given)} cannot be set "
                "(a comparison is made in the mission's own sandbox)"
            )
        return self

    @property
    def argv(self) -> list[str]:
        """The command (empty for a ``compare``)."""
        return self.command or []

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
    image: ImageReference | None = None
    # A language of the server's registry (id or alias): the server sets ``image`` from it.
    language: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    runtime: Annotated[Text, Field(min_length=1)] | None = None
    tick: bool = False
