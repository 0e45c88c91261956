"""A finished mission judged as Judge0 judges a submission: pure.

Statuses are chosen as Judge0 1.13.1's ``IsolateJob`` chooses them: a compile that fails is 6
(``Compilation time limit exceeded.`` when it ran out of time); then each run in order, stopping
at the first that is not Accepted: time over the CPU limit 5 (isolate's rule: over the limit is
TLE even within the extra time), killed by signal 11/25/8/6 7/8/9/10 and by another signal 12,
a non-zero exit 11, the judge's own failure 13, else 3 when there is no expected output or it
equals the output with trailing whitespace ignored on each line and at the end, otherwise 4.
Time and memory are the mean over the runs that ran; the rest comes from the last of them.

Where we do better (documented differences): a run over its memory limit is 12 with the message
``Memory limit exceeded`` (Judge0 has no such status: it shows as a signal or an NZEC), and a
run that writes more than ``max_file_size`` is 8 with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.frontdoors.judge0 import wire

COMPILE_TIMEOUT = "Compilation time limit exceeded."
_SIGNAL_STATUS = {11: wire.SIGSEGV, 25: wire.SIGXFSZ, 8: wire.SIGFPE, 6: wire.SIGABRT}


@dataclass
class Outcome:
    """The Judge0 fields a submission ends with (bytes for the text ones)."""

    status_id: int
    time_s: float | None = None
    wall_time_s: float | None = None
    memory_kib: int | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    message: str | None = None
    stdout: bytes | None = None
    stderr: bytes | None = None
    compile_output: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        return {
            "status_id": self.status_id,
            "time": self.time_s,
            "wall_time": self.wall_time_s,
            "memory": self.memory_kib,
            "exit_code": self.exit_code,
            "exit_signal": self.exit_signal,
            "message": self.message,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "compile_output": self.compile_output,
        }


def strip_output(text: bytes) -> bytes:
    """Judge0's comparison form: each line's trailing whitespace dropped, then the end's."""
    return b"\n".join(line.rstrip() for line in text.split(b"\n")).rstrip()


def matches(expected: bytes | None, stdout: bytes | None) -> bool:
    if expected is None:
        return True
    return strip_output(expected) == strip_output(stdout or b"")


def _empty_none(data: bytes | None) -> bytes | None:
    return data if data else None


def run_status(
    meta: dict[str, Any],
    *,
    cpu_limit_ms: float | None,
    max_file_kib: int,
    expected: bytes | None,
    stdout: bytes | None,
) -> tuple[int, str | None]:
    """One run's status and message from its meta (``cpu_limit_ms`` None: no CPU limit)."""
    status = meta.get("status", "")
    signal = int(meta.get("signal") or 0)
    code = meta.get("exit-code")
    cpu_ms = float(meta.get("cpu-time-usage") or 0)
    if status == "SE":
        return wire.INTERNAL_ERROR, str(meta.get("message") or "the judge could not run it")
    message = str(meta.get("message") or "")
    if status == "TLE" or (
        cpu_limit_ms is not None and status in ("", "RE") and cpu_ms > cpu_limit_ms
    ):
        # The sandbox says which limit it was; an older one only that it was one of them.
        wall = message.startswith("real time") or (
            status == "TLE"
            and not message.startswith("CPU time")
            and cpu_limit_ms is not None
            and cpu_ms <= cpu_limit_ms
        )
        return (
            wire.TIME_LIMIT_EXCEEDED,
            "Time limit exceeded (wall clock)" if wall else "Time limit exceeded",
        )
    if status == "RE" and message.startswith("process limit exceeded"):
        return wire.OTHER, "Process limit exceeded (max_processes_and_or_threads)"
    if status == "MLE":
        return wire.OTHER, "Memory limit exceeded"
    if status == "OLE":
        return (
            wire.SIGXFSZ,
            f"Output limit exceeded: a file reached max_file_size ({max_file_kib} KB)",
        )
    if status == "RE":
        if signal:
            return _SIGNAL_STATUS.get(signal, wire.OTHER), f"Caught fatal signal {signal}"
        return wire.NZEC, f"Exited with error status {code}"
    if status:
        return wire.INTERNAL_ERROR, str(meta.get("message") or status)
    return (wire.ACCEPTED if matches(expected, stdout) else wire.WRONG_ANSWER), None


@dataclass(frozen=True)
class CompileResult:
    """A compile's end, as the cache keeps it: did it succeed, and what it printed."""

    ok: bool
    output: bytes | None
    timed_out: bool = False


def compile_result(meta: dict[str, Any], output: bytes | None) -> CompileResult | None:
    """The compile step's end; None when the judge could not run it (an internal error)."""
    status = meta.get("status", "")
    if status == "SE":
        return None
    return CompileResult(ok=status == "", output=_empty_none(output), timed_out=status == "TLE")


def judge(
    executes: list[dict[str, Any]],
    outputs: dict[str, bytes],
    *,
    compiles: bool,
    cached: CompileResult | None,
    runs: int,
    redirect: bool,
    cpu_limit_s: float,
    max_file_kib: int,
    expected: bytes | None,
) -> Outcome:
    """Judge a done mission's result (``executes``: its prepare executes) with the files read
    back from ``.j0/o`` (by name: ``compile``, ``out0``, ``err0``, ...).

    ``cached``: the compile the cache handed in (its step only unpacked it)."""
    index = 0
    compile_output: bytes | None = None
    if compiles:
        meta = executes[0]["meta"]
        index = 1
        if cached is not None:
            if meta.get("status", "") != "":
                return Outcome(
                    wire.INTERNAL_ERROR, message="the cached compile could not be unpacked"
                )
            result: CompileResult | None = cached
        else:
            result = compile_result(meta, outputs.get("compile"))
        if result is None:
            return Outcome(
                wire.INTERNAL_ERROR, message=str(meta.get("message") or "compile failed")
            )
        compile_output = result.output
        if not result.ok:
            text = COMPILE_TIMEOUT.encode() if result.timed_out else compile_output
            return Outcome(wire.COMPILATION_ERROR, compile_output=text)
    times: list[float] = []
    memories: list[int] = []
    outcome = Outcome(wire.INTERNAL_ERROR, message="nothing was run", compile_output=compile_output)
    cpu_limit_ms = cpu_limit_s * 1000 if cpu_limit_s > 0 else None
    for run in range(runs):
        meta = executes[index + run]["meta"]
        stdout = _empty_none(outputs.get(f"out{run}"))
        stderr = None if redirect else _empty_none(outputs.get(f"err{run}"))
        status_id, message = run_status(
            meta,
            cpu_limit_ms=cpu_limit_ms,
            max_file_kib=max_file_kib,
            expected=expected,
            stdout=stdout,
        )
        times.append(float(meta.get("cpu-time-usage") or 0) / 1000)
        memories.append(int(meta.get("memory-usage") or 0))
        signal = int(meta.get("signal") or 0)
        outcome = Outcome(
            status_id,
            time_s=sum(times) / len(times),
            wall_time_s=float(meta.get("real-time-usage") or 0) / 1000,
            memory_kib=int(sum(memories) / len(memories)),
            exit_code=int(meta.get("exit-code") or 0),
            exit_signal=signal or None,
            message=message,
            stdout=stdout,
            stderr=stderr,
            compile_output=compile_output,
        )
        if status_id != wire.ACCEPTED:
            break
    return outcome
