"""A Piston execute as a mission: the files and stdin handed in, a compile execute for a
compiled language, then the run.

The entry file is the first (see ``request``); the compile and run commands are the language's
templates with ``{file}``/``{stem}`` filled in, the request's ``args`` appended to the run.
Each stage writes its stdout and stderr to files of the door's own directory (``.piston``), and
both in write order to a third (the execute's ``merged`` file: Piston's ``output``), reported
back as records (the first bytes of each) or, when the configured cap needs more than a record
holds, read back after the mission.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from orchestrator.languages.model import expand
from service.frontdoors.piston.request import RESERVED_DIR, ExecuteJob, StageLimits
from service.frontdoors.piston.settings import PistonSettings

KIND = "piston"
STDIN = f"{RESERVED_DIR}/stdin"
RECORD_MAX_BYTES = 4096  # the most a mission's record reports per stream
_UTF8_MAX = 4  # bytes per character at most

# The mission model's own bounds (orchestrator.mission): a stage's limits are clamped to them.
_MAX_TIME_MS = 60_000
_MAX_MEMORY_KIB = 2_097_152
_MAX_OUTPUT_KIB = 262_144


@dataclass(frozen=True)
class StagePlan:
    """Where one stage's execute is in the mission and where its output goes."""

    name: str  # "compile" or "run"
    index: int  # in prepare.execute
    stdout: str
    stderr: str
    record_bytes: int  # 0: read the files back instead (``collect``)
    merged: str = ""  # both streams in write order (the execute's ``merged`` file)

    @property
    def collect(self) -> list[str]:
        if self.record_bytes:
            return []
        return [self.stdout, self.stderr, *([self.merged] if self.merged else [])]


@dataclass(frozen=True)
class MissionPlan:
    """The mission of an execute, the files handed in, and its stages."""

    mission: dict[str, Any]
    inputs: dict[str, bytes]
    stages: tuple[StagePlan, ...]
    extra_collect: tuple[str, ...] = ()
    archive: bytes = b""  # a vetted compiled box, placed before the inputs (MissionIO.archive)

    @property
    def collect(self) -> list[str]:
        return [*(p for stage in self.stages for p in stage.collect), *self.extra_collect]

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)


_MAX_WALL_MS = 180_000


COMPILE_FILE_KIB = 64 * 1024
"""The largest file a compile may write: toolchains write binaries larger than a program's
usual file limit (rustc's linker writes ~14 MB for a hello world)."""


def file_size_kib(settings: PistonSettings, *, compiling: bool = False) -> int:
    """The largest file a stage may write, KiB: ``max_file_size``, and for a compile at least
    :data:`COMPILE_FILE_KIB`."""
    kib = max(1, math.ceil(settings.max_file_size / 1024))
    if compiling:
        kib = max(kib, COMPILE_FILE_KIB)
    return min(_MAX_OUTPUT_KIB, kib)


def record_bytes(output_max_size: int) -> int:
    """Bytes of a record that tell whether a stream went over ``output_max_size`` characters
    (one more character at 4 bytes each), or 0 when a record cannot hold that many."""
    need = (output_max_size + 1) * _UTF8_MAX
    if need <= RECORD_MAX_BYTES:
        return need
    # At the default cap of 1024 characters, 4096 bytes tell unless every one of them is a
    # 4-byte character; a full record then counts as over (see ``stages``).
    return RECORD_MAX_BYTES if output_max_size * _UTF8_MAX <= RECORD_MAX_BYTES else 0


def _limits(
    limits: StageLimits, settings: PistonSettings, compile_floor: dict[str, int] | None = None
) -> dict[str, Any]:
    """An execute's limits; ``compile_floor`` (a compile's: the registry's compile limits,
    memory KiB and CPU ms; None for the run) raises them to what the toolchain needs."""
    floor = compile_floor or {}
    memory_kib = max(math.ceil(limits.memory_bytes / 1024), floor.get("memory_limit", 1))
    cpu_ms = max(limits.cpu_time_ms, floor.get("time_limit", 1))
    return {
        "time_limit": min(_MAX_TIME_MS, cpu_ms),
        "memory_limit": min(_MAX_MEMORY_KIB, memory_kib),
        "output_limit": file_size_kib(settings, compiling=compile_floor is not None),
        # Piston's timeouts are wall clock: the execute's own real-time limit (a compile gets at
        # least its CPU floor in real time too).
        "wall_time_limit": min(
            _MAX_WALL_MS, max(limits.timeout_ms, cpu_ms) if floor else limits.timeout_ms
        ),
    }


def _execute(
    stage: str,
    command: list[str],
    limits: StageLimits,
    settings: PistonSettings,
    *,
    stdin: str,
    compile_floor: dict[str, int] | None = None,
) -> tuple[dict[str, Any], StagePlan]:
    rec = record_bytes(settings.output_max_size)
    plan = StagePlan(
        name=stage,
        index=0,
        stdout=f"{RESERVED_DIR}/{stage}.out",
        stderr=f"{RESERVED_DIR}/{stage}.err",
        record_bytes=rec,
        merged=f"{RESERVED_DIR}/{stage}.output",
    )
    execute = {
        "name": stage,
        "command": command,
        **_limits(limits, settings, compile_floor),
        "stdin": stdin,
        "stdout": plan.stdout,
        "stderr": plan.stderr,
        # Piston's ``output``: both streams in the order the program wrote them.
        "merged": plan.merged,
        "meta": f"{RESERVED_DIR}/{stage}.meta",
        "record": {"enable": rec > 0, "stdout": rec, "stderr": rec, "merged": 2 * rec},
    }
    return execute, plan


ARTIFACT = f"{RESERVED_DIR}/artifact.tar"
"""The compiled box: a tar of the sandbox's files after compiling, made and unpacked inside the
sandbox (the host never unpacks it)."""
ARTIFACT_MAX_KIB = 64 * 1024
_TAR_LIMITS = {"time_limit": 5000, "memory_limit": 65536, "record": {"enable": False}}


def compile_key(job: ExecuteJob) -> tuple[str | bytes, ...]:
    """What decides a compile's outcome, for ``CompileCache.key`` after the tenant: the image,
    the compile command, every file (name and bytes; the entry first). Empty for an
    interpreted language."""
    runtime = job.runtime
    if runtime.compile is None:
        return ()
    parts: list[str | bytes] = [runtime.image, "\0".join(runtime.compile)]
    for f in job.files:
        parts += [f.name, f.data]
    return tuple(parts)


# Piston's gcc runtime compiles every file of a job (its compile script appends ``.c`` or
# ``.cpp`` to every name and runs ``gcc *.c``). Here the entry file, whatever its name, and every
# other file whose name says it is a source of the language: headers stay headers (an
# ``#include`` finds them) and data files stay data.
_SOURCES_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    "c": (".c",),
    "c++": (".cpp", ".cc", ".cxx", ".c++", ".C"),
}


def compile_command(job: ExecuteJob) -> list[str] | None:
    """The compile command of ``job`` (None for an interpreted language): the language's
    template on the entry file, with the job's other source files right after it for the
    languages Piston compiles as a whole (C and C++)."""
    runtime = job.runtime
    if runtime.compile is None:
        return None
    entry = job.entry.name
    argv = expand(runtime.compile, entry)
    suffixes = _SOURCES_BY_LANGUAGE.get(runtime.language)
    if not suffixes or "{file}" not in runtime.compile:
        return argv
    others = [f.name for f in job.files[1:] if f.name.endswith(suffixes) and f.name != entry]
    at = runtime.compile.index("{file}") + 1
    return [*argv[:at], *others, *argv[at:]]


PACK_ARGV = ("tar", "-cf", ARTIFACT, f"--exclude=./{RESERVED_DIR}", ".")
UNPACK_ARGV = ("tar", "-xf", ARTIFACT)


def _pack() -> dict[str, Any]:
    return {
        "name": "pack",
        "command": list(PACK_ARGV),
        **_TAR_LIMITS,
        "output_limit": ARTIFACT_MAX_KIB,
        "meta": f"{RESERVED_DIR}/pack.meta",
    }


def _unpack() -> dict[str, Any]:
    return {
        "name": "unpack",
        "command": list(UNPACK_ARGV),
        **_TAR_LIMITS,
        "output_limit": ARTIFACT_MAX_KIB,
        "meta": f"{RESERVED_DIR}/unpack.meta",
    }


def mission_plan(
    job: ExecuteJob,
    settings: PistonSettings,
    *,
    stdin_newline: bool = True,
    artifact: bytes | None = None,
    vetted: bool = False,
    pack: bool = False,
) -> MissionPlan:
    """The mission that runs ``job``, its input files and its stages.

    ``stdin_newline``: end stdin with a newline when it has none, as Piston does. For a compiled
    language, ``artifact`` (a compiled box from the cache) replaces compiling: the sandbox gets
    it instead of the files and unpacks it before the run (the plan has no compile stage then);
    when it is ``vetted`` (``vet_archive``) the sandbox gets it as ``MissionIO.archive`` before
    the run instead, which costs no execute;
    ``pack``: after compiling, pack the sandbox into :data:`ARTIFACT`, read back after the
    mission (``collect``) for the cache.
    """
    runtime = job.runtime
    entry = job.entry.name
    stdin = job.stdin
    if stdin_newline and not stdin.endswith("\n"):
        stdin += "\n"
    compiled = runtime.compile is not None
    archive = b""
    if compiled and artifact is not None and vetted:
        inputs, archive = {}, artifact
    elif compiled and artifact is not None:
        inputs = {ARTIFACT: artifact}
    else:
        inputs = {f.name: f.data for f in job.files}
    inputs[STDIN] = stdin.encode("utf-8")
    executes: list[dict[str, Any]] = []
    stages: list[StagePlan] = []
    extra: list[str] = []
    compile_ = compile_command(job)
    if compile_ is not None and artifact is None:
        ex, plan = _execute(
            "compile",
            compile_,
            job.compile,
            settings,
            stdin="",
            compile_floor=runtime.compile_limits,
        )
        stages.append(dataclasses.replace(plan, index=len(executes)))
        executes.append(ex)
        if pack:
            executes.append(_pack())
            extra.append(ARTIFACT)
    elif compiled and not archive:
        executes.append(_unpack())
    run_command = [*expand(runtime.run, entry), *job.args]
    ex, plan = _execute("run", run_command, job.run, settings, stdin=STDIN)
    # Compilers (javac, go) run many threads: the run alone counts processes, as in Piston.
    ex["process_limit"] = settings.max_process_count
    stages.append(dataclasses.replace(plan, index=len(executes)))
    executes.append(ex)
    mission = {"image": runtime.image, "prepare": {"execute": executes}}
    return MissionPlan(mission, inputs, tuple(stages), tuple(extra), archive)


__all__ = [
    "ARTIFACT",
    "ARTIFACT_MAX_KIB",
    "KIND",
    "PACK_ARGV",
    "STDIN",
    "UNPACK_ARGV",
    "MissionPlan",
    "StagePlan",
    "compile_command",
    "compile_key",
    "mission_plan",
    "record_bytes",
    "wall_budget_s",
]


def wall_budget_s(plan: MissionPlan) -> float:
    """The longest the plan's executes may run, in seconds (real time: 1.5 x CPU time, or the
    wall-clock limit where an execute sets one)."""
    total_ms = 0
    for ex in plan.mission["prepare"]["execute"]:
        total_ms += ex.get("wall_time_limit") or math.ceil(1.5 * ex["time_limit"])
    return total_ms / 1000
