"""What a mission run is made of: its dependencies and files (MissionDeps, MissionIO), its timings,
the plan of its stages, and each execute's request to the sandbox and entry in the result."""

from __future__ import annotations

import dataclasses
import posixpath
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from orchestrator.mission import Execute, Mission
from orchestrator.mission import result as result_doc
from orchestrator.run.fetch import FetchLimits
from orchestrator.sandbox.execute import ExecOutcome, ExecRequest, InteractorRequest, Meta
from orchestrator.sandbox.pool import SandboxPool
from orchestrator.sandbox.sandbox import Sandbox, SandboxRuntime
from orchestrator.sandbox.tar import build_tar


@dataclass
class PhaseTimes:
    """Seconds spent per phase of a mission (for benchmarks and metrics)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.counts[name] += 1


@dataclass
class MissionDeps:
    """What a mission run needs from its owner; long-lived, shared by missions."""

    runtime: SandboxRuntime
    session: aiohttp.ClientSession
    default_image: str
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    blob_reader: Callable[[str], Awaitable[bytes | None]] | None = None
    pool: SandboxPool | None = None
    max_task_parallel: int = 4  # tasks.parallel is clamped to this
    # The most bytes of files one mission may hold in the server at once (see _fetch_files).
    files_budget_bytes: int = 512 * 1024 * 1024


@dataclass
class MissionIO:
    """Files a front door hands in and paths it wants back; the mission API uses neither.

    ``inputs`` (relative path -> content) are placed in the main sandbox before prepare, after
    ``archive``: a tar already vetted (``orchestrator.sandbox.tar.vet_archive``: only regular
    files and directories, safe names), unpacked into ``/box`` by the supervisor (a front door's
    compiled box, so that a cached compile costs no execute to unpack).
    After final, each path of ``collect`` ("" = the whole sandbox) is read back as a vetted tar
    (links and devices left out) into ``collected``, or its error into ``collect_errors``.
    ``sandbox`` is the main sandbox while the mission's stages run (None before its inputs are
    in and once they are over): a front door may read files from it with ``get_archive`` (e.g.
    the output of a running command), never talk to its supervisor, which the runner owns.
    ``live_reads``: the front door will read while commands run, so the main sandbox keeps
    ``/box`` on a volume the engine can read from outside (the supervisor's channel is busy
    during an execute); such a sandbox is created for the mission, not taken from the pool.
    ``wants_collect`` is asked once, with the result, before collecting: a door that finds what
    it needs in the executes' records says False and nothing is read back (each path costs
    round trips to the sandbox).
    """

    inputs: dict[str, bytes] = field(default_factory=dict)
    archive: bytes = b""
    collect: list[str] = field(default_factory=list)
    collected: dict[str, bytes] = field(default_factory=dict)
    collect_errors: dict[str, str] = field(default_factory=dict)
    sandbox: Sandbox | None = None
    live_reads: bool = False

    def wants_collect(self, result: dict[str, Any]) -> bool:
        """Whether ``collect`` is still needed once the mission's stages ended with ``result``
        (always, unless a door says otherwise)."""
        return True


@dataclass
class _Overlay:
    """What a task running in parallel would have written into the mission's sandbox: its
    files, its exports (vetted tars) and its meta files, in the order they happened. Its own
    later imports read from here first; the mission's sandbox gets all of it in task order."""

    ops: list[tuple[str, str, bytes, int]] = field(default_factory=list)  # kind, path, data, ex

    def lookup(self, path: str) -> bytes | None:
        """A tar of ``path`` (arriving by its last component) if this task wrote it last."""
        key = posixpath.normpath(path)
        for kind, where, data, _ in reversed(self.ops):
            if posixpath.normpath(where) == key:
                if kind == "tar":
                    return data
                return build_tar({posixpath.basename(key): data})
        return None


@dataclass(frozen=True)
class ExecuteDone:
    """One execute has its final entry: where it is in the result, and the entry itself.

    ``stage`` is ``prepare``, ``task`` or ``final``; ``task`` the task's index (None outside
    tasks); ``index`` the execute's index in its stage; ``entry`` is ``{name, meta, record}``.
    """

    stage: str
    task: int | None
    index: int
    entry: dict[str, Any]


@dataclass
class _Stage:
    """One stage's planned work and its slot in the result."""

    files: dict[str, str]
    executes: list[Execute]
    result: dict[str, Any]
    done: int = 0  # executes whose result is final
    name: str = "prepare"
    task: int | None = None


def _record(outcome: ExecOutcome | None, ex: Execute) -> dict[str, str]:
    merged = "" if ex.merged is not None else None
    if outcome is None or not ex.record.enable:
        return result_doc.record(merged_b64=merged)
    if merged is not None:
        merged = outcome.merged_b64
    return result_doc.record(outcome.stdout_b64, outcome.stderr_b64, merged)


def _entry(
    ex: Execute,
    meta: Meta,
    outcome: ExecOutcome | None = None,
    interactor_meta: Meta | None = None,
) -> dict[str, Any]:
    """An execute's result entry; an interactive one also gets ``interactor`` (its meta is
    ``interactor_meta``, else the outcome's, else ``meta`` when it never ran)."""
    interactor = None
    if ex.interactor is not None:
        inter = outcome.interactor if outcome is not None else None
        imeta = interactor_meta or (inter.meta if inter is not None else meta)
        interactor = (imeta.to_dict(), _record(inter, ex))
    return result_doc.execute_entry(ex, meta.to_dict(), _record(outcome, ex), interactor)


def _plan(mission: Mission) -> tuple[list[_Stage], dict[str, Any]]:
    """Lay out every stage with every execute pre-filled as not run (SE), so a result is always
    complete; running a stage overwrites its entries."""
    plans = result_doc.plan(mission)
    result = result_doc.not_run(plans, "not run")
    stages = [
        _Stage(dict(p.files), list(p.executes), slot, name=p.name, task=p.task)
        for p, slot in zip(plans, result_doc.stage_results(result), strict=True)
    ]
    return stages, result


def _interactor(ex: Execute) -> InteractorRequest | None:
    inter = ex.interactor
    if inter is None:
        return None
    return InteractorRequest(
        argv=tuple(inter.command),
        cpu_time_ms=inter.time_limit,
        memory_kib=inter.memory_limit,
        output_kib=inter.output_limit,
        stderr=inter.stderr,
        record_stderr_bytes=ex.record.stderr if ex.record.enable else 0,
        private=tuple(inter.private),
    )


def _fence_kib(ex: Execute) -> int:
    """The memory a sandbox needs for ``ex``: its limit plus its interactor's."""
    return ex.memory_limit + (ex.interactor.memory_limit if ex.interactor else 0)


def exec_request(ex: Execute, meta_file: str = "") -> ExecRequest:
    """The sandbox request of an execute (its limits, files and interactor)."""
    return ExecRequest(
        meta_file=meta_file,
        argv=tuple(ex.argv),
        cpu_time_ms=ex.time_limit,
        memory_kib=ex.memory_limit,
        output_kib=ex.output_limit,
        stdin=ex.stdin,
        stdout=ex.stdout,
        stderr=ex.stderr,
        record_stdout_bytes=ex.record.stdout if ex.record.enable else 0,
        record_stderr_bytes=ex.record.stderr if ex.record.enable else 0,
        interactor=_interactor(ex),
        wall_time_limit_ms=ex.wall_time_limit,
        process_limit=ex.process_limit,
        file_size_kib=ex.file_size_limit,
        stack_kib=ex.stack_limit,
        merged=ex.merged or "",
        record_merged_bytes=ex.merged_record_bytes,
    )


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _with_failure(meta: Meta, message: str) -> Meta:
    """Report a judge-side failure after the command ran: SE unless a verdict is already set."""
    if meta.status == "":
        return dataclasses.replace(meta, status="SE", message=message)
    joined = f"{meta.message}; {message}" if meta.message else message
    return dataclasses.replace(meta, message=joined)
