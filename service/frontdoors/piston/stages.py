"""A mission's result as Piston's answer: ``{language, version, run, compile?}``.

Each stage is ``stdout``, ``stderr``, ``code``, ``signal``, ``output``, ``memory`` (bytes),
``message``, ``status``, ``cpu_time`` and ``wall_time`` (ms). Statuses as Piston's isolate
gives them: ``RE`` a non-zero exit, ``SG`` killed by a signal (a memory-limit kill is ``SG``,
``SIGKILL``, "Memory limit exceeded"), ``TO`` a time limit, ``OL``/``EL`` stdout/stderr over
the configured number of characters, ``XX`` the judge could not run it, ``null`` all went well.

Unlike Piston, a stream over the cap is cut to the cap rather than dropped at the chunk that
crossed it, and output written before a time limit is kept. ``output`` is both streams in the
order the program wrote them (the execute's merged file), as many characters as ``stdout`` and
``stderr`` hold together.
"""

from __future__ import annotations

import base64
import codecs
import signal as signals
from collections.abc import Mapping
from typing import Any

from orchestrator.sandbox.tar import single_file
from service.frontdoors.piston.request import ExecuteJob
from service.frontdoors.piston.translate import MissionPlan, StagePlan


def signal_name(number: int) -> str | None:
    """``SIGSEGV`` for 11; None for 0 or a number that names no signal."""
    if number <= 0:
        return None
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def cap_text(raw: bytes, cap: int, record_bytes: int) -> tuple[str, bool]:
    """The first ``cap`` characters of a stream and whether it had more.

    ``raw`` is a record of at most ``record_bytes`` (a full record may have been cut inside a
    character, and the stream may go on) or, with ``record_bytes`` 0, the whole stream."""
    full = record_bytes > 0 and len(raw) >= record_bytes
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(raw, final=not full)
    return text[:cap], len(text) > cap or full


def read_collected(archive: bytes | None) -> bytes:
    """The content of a path read back from the sandbox (a one-file tar; b"" for none)."""
    return single_file(archive)


def verdict(
    meta: Mapping[str, Any], out_over: bool, err_over: bool
) -> tuple[str | None, int | None, str | None, str | None]:
    """``(status, code, signal, message)`` of an execute's meta."""
    status = str(meta.get("status", ""))
    message = str(meta.get("message", ""))
    code = int(meta.get("exit-code", 0) or 0)
    sig = int(meta.get("signal", 0) or 0)
    if status == "SE":
        return "XX", None, None, message or "internal error"
    if status == "TLE":
        wall = message.startswith("real time")
        return "TO", None, "SIGKILL", "Time limit exceeded" + (" (wall clock)" if wall else "")
    if status == "MLE":
        return "SG", None, "SIGKILL", "Memory limit exceeded"
    if out_over:
        return (
            "OL",
            None if status == "OLE" else code,
            "SIGKILL" if status == "OLE" else None,
            ("stdout length exceeded"),
        )
    if err_over:
        return (
            "EL",
            None if status == "OLE" else code,
            "SIGKILL" if status == "OLE" else None,
            ("stderr length exceeded"),
        )
    if status == "OLE":  # a file other than stdout and stderr went over the size limit
        return "SG", None, "SIGXFSZ", "File size limit exceeded"
    if status == "RE" and message.startswith("process limit exceeded"):
        return "SG", None, "SIGKILL", "Process limit exceeded"
    if status == "RE":
        if sig:
            return "SG", None, signal_name(sig), f"Caught fatal signal {sig}"
        if code:
            return "RE", code, None, f"Exited with error status {code}"
        return "RE", code, None, message or "Run error"
    return None, code, None, None


def interleaved(merged: bytes | None, out: str, err: str) -> str:
    """Piston's ``output``: the merged bytes (both streams in write order) cut to as many
    characters as the capped ``out`` and ``err`` hold together; ``out + err`` without them.
    (When a stream went over its cap the cut may keep some of its characters past the cap in
    place of later ones of the other stream: the merged file does not say which byte came from
    which stream.)"""
    if merged is None:
        return out + err
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(merged, final=False)[: len(out) + len(err)]


def stage_doc(
    entry: Mapping[str, Any],
    stdout: bytes,
    stderr: bytes,
    cap: int,
    record_bytes: int,
    merged: bytes | None = None,
) -> dict[str, Any]:
    """One Piston stage from a mission result entry, the stage's stdout/stderr bytes and its
    merged bytes (both in write order; None: ``output`` is stdout then stderr)."""
    meta: Mapping[str, Any] = entry.get("meta") or {}
    out, out_over = cap_text(stdout, cap, record_bytes)
    err, err_over = cap_text(stderr, cap, record_bytes)
    status, code, sig, message = verdict(meta, out_over, err_over)
    return {
        "stdout": out,
        "stderr": err,
        "code": code,
        "signal": sig,
        "output": interleaved(merged, out, err),
        "memory": int(meta.get("memory-usage", 0) or 0) * 1024,
        "message": message,
        "status": status,
        "cpu_time": int(meta.get("cpu-time-usage", 0) or 0),
        "wall_time": int(meta.get("real-time-usage", 0) or 0),
    }


def _streams(
    plan: StagePlan, entry: Mapping[str, Any], collected: Mapping[str, bytes]
) -> tuple[bytes, bytes, bytes | None]:
    """A stage's stdout, stderr and merged bytes (None when the plan has no merged file)."""
    if plan.record_bytes:
        record = entry.get("record") or {}
        merged = record.get("merged")
        return (
            base64.b64decode(str(record.get("stdout", ""))),
            base64.b64decode(str(record.get("stderr", ""))),
            base64.b64decode(str(merged)) if plan.merged and merged is not None else None,
        )
    return (
        read_collected(collected.get(plan.stdout)),
        read_collected(collected.get(plan.stderr)),
        read_collected(collected.get(plan.merged)) if plan.merged else None,
    )


def answer_of(
    job: ExecuteJob, run: dict[str, Any], compile_: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Piston's 200 answer: ``compile`` (a compiled language), ``run`` (the compile stage again
    when compiling failed: Piston never starts the run then), ``language``, ``version``."""
    answer: dict[str, Any] = {}
    if compile_ is not None:
        answer["compile"] = compile_
        if compile_["code"] != 0:
            run = compile_
    answer["run"] = run
    answer["language"] = job.runtime.language
    answer["version"] = job.runtime.version
    return answer


def piston_answer(
    job: ExecuteJob,
    plan: MissionPlan,
    result: Mapping[str, Any],
    collected: Mapping[str, bytes],
    cap: int,
    compiled: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Piston's answer for a finished mission; ``compiled``: the compile stage of a compiled
    box the mission reused (the plan then has no compile stage)."""
    entries = result["prepare"]["execute"]
    stages: dict[str, dict[str, Any]] = {}
    for stage in plan.stages:
        entry = entries[stage.index]
        stdout, stderr, merged = _streams(stage, entry, collected)
        stages[stage.name] = stage_doc(entry, stdout, stderr, cap, stage.record_bytes, merged)
    return answer_of(job, stages["run"], stages.get("compile", compiled))


__all__ = [
    "answer_of",
    "cap_text",
    "interleaved",
    "piston_answer",
    "read_collected",
    "signal_name",
    "stage_doc",
    "verdict",
]
