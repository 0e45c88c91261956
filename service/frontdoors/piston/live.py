"""What a live (interactive) Piston job needs from a sandbox, and its stages' requests.

The WebSocket (``connect``) runs a job in a sandbox of its own: the files put in, then each
stage as a streaming execute (stdin a live pipe, stdout/stderr relayed as written, signals
delivered). These protocols are the part of ``orchestrator.sandbox`` it uses, so the protocol
logic is tested without an engine; the claims about sandboxes are tested on the real one.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from orchestrator.errors import SandboxError
from orchestrator.languages.model import expand
from orchestrator.sandbox.sandbox import ExecOutcome, ExecRequest
from service.frontdoors.piston.request import ExecuteJob, StageLimits
from service.frontdoors.piston.settings import PistonSettings
from service.frontdoors.piston.stages import read_collected
from service.frontdoors.piston.translate import (
    ARTIFACT,
    ARTIFACT_MAX_KIB,
    PACK_ARGV,
    UNPACK_ARGV,
    compile_command,
    file_size_kib,
)

# Piston's signal names (its globals.SIGNALS): 1-31 and the real-time ones, 34-64.
SIGNALS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        [
            "SIGHUP",
            "SIGINT",
            "SIGQUIT",
            "SIGILL",
            "SIGTRAP",
            "SIGABRT",
            "SIGBUS",
            "SIGFPE",
            "SIGKILL",
            "SIGUSR1",
            "SIGSEGV",
            "SIGUSR2",
            "SIGPIPE",
            "SIGALRM",
            "SIGTERM",
            "SIGSTKFLT",
            "SIGCHLD",
            "SIGCONT",
            "SIGSTOP",
            "SIGTSTP",
            "SIGTTIN",
            "SIGTTOU",
            "SIGURG",
            "SIGXCPU",
            "SIGXFSZ",
            "SIGVTALRM",
            "SIGPROF",
            "SIGWINCH",
            "SIGIO",
            "SIGPWR",
            "SIGSYS",
        ],
        start=1,
    )
}
SIGNALS.update({"SIGRTMIN": 34, "SIGRTMAX": 64})
SIGNALS.update({f"SIGRTMIN+{i}": 34 + i for i in range(1, 16)})
SIGNALS.update({f"SIGRTMAX-{i}": 64 - i for i in range(1, 15)})


class LiveRun(Protocol):
    """A streaming execute while it runs (``orchestrator``'s ``ExecStream``)."""

    stdout_bytes: int
    stderr_bytes: int

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def signal(self, number: int) -> None: ...

    def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]: ...

    async def result(self) -> ExecOutcome: ...


class LiveBox(Protocol):
    """A sandbox as a live job uses it (``orchestrator``'s ``Sandbox``)."""

    async def put_files(self, files: Mapping[str, bytes]) -> None: ...

    def stream(self, req: ExecRequest) -> AbstractAsyncContextManager[LiveRun]: ...

    async def run(self, req: ExecRequest) -> ExecOutcome: ...

    async def put_archive(self, directory: str, data: bytes) -> None: ...

    async def get_archive(
        self, path: str, *, skip_special: bool = False, max_bytes: int | None = None
    ) -> bytes: ...


def _tar(argv: tuple[str, ...]) -> ExecRequest:
    return ExecRequest(argv=argv, cpu_time_ms=5000, memory_kib=65536, output_kib=ARTIFACT_MAX_KIB)


async def pack(box: LiveBox) -> bytes:
    """The sandbox's files after a compile as a tar made in the sandbox (the compile cache's
    box), or b"" when it could not be made. Raises the engine's errors."""
    await box.put_files({ARTIFACT: b""})  # its directory
    packed = await box.run(_tar(PACK_ARGV))
    if packed.meta.status:
        return b""
    archive = await box.get_archive(ARTIFACT, max_bytes=ARTIFACT_MAX_KIB * 1024)
    return read_collected(archive)


async def unpack(box: LiveBox, artifact: bytes) -> None:
    """A compiled box from the cache unpacked in the sandbox. Raises ``JudgeError`` when it
    cannot be (the job is then reported as the judge's failure)."""
    await box.put_files({ARTIFACT: artifact})
    unpacked = await box.run(_tar(UNPACK_ARGV))
    if unpacked.meta.status:
        raise SandboxError(f"the compiled program could not be unpacked: {unpacked.meta.message}")


def stage_request(
    argv: list[str],
    limits: StageLimits,
    settings: PistonSettings,
    at_least: Mapping[str, int] | None = None,
    *,
    count_processes: bool = False,
) -> ExecRequest:
    """A streaming execute of ``argv`` under a stage's limits (and at least ``at_least``, the
    registry's compile needs): its output relayed up to ``max_file_size`` bytes in all;
    ``count_processes``: at most ``max_process_count`` processes (the run stage)."""
    floor = at_least or {}
    cpu_ms = min(60_000, max(limits.cpu_time_ms, floor.get("time_limit", 1)))
    wall = max(limits.timeout_ms, cpu_ms) if floor else limits.timeout_ms
    return ExecRequest(
        argv=tuple(argv),
        cpu_time_ms=cpu_ms,
        memory_kib=min(
            2_097_152, max(math.ceil(limits.memory_bytes / 1024), floor.get("memory_limit", 1))
        ),
        output_kib=file_size_kib(settings, compiling=at_least is not None),
        wall_time_limit_ms=min(180_000, wall),
        process_limit=settings.max_process_count if count_processes else None,
    )


def live_stages(job: ExecuteJob, settings: PistonSettings) -> list[tuple[str, ExecRequest]]:
    """``[("compile", request)?, ("run", request)]`` of a live job."""
    runtime = job.runtime
    entry = job.entry.name
    stages: list[tuple[str, ExecRequest]] = []
    argv = compile_command(job)
    if argv is not None:
        stages.append(
            ("compile", stage_request(argv, job.compile, settings, runtime.compile_limits))
        )
    run = [*expand(runtime.run, entry), *job.args]
    stages.append(("run", stage_request(run, job.run, settings, count_processes=True)))
    return stages


__all__ = ["SIGNALS", "LiveBox", "LiveRun", "live_stages", "pack", "stage_request", "unpack"]
