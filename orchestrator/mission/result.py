"""The result document of a mission, and the states a mission goes through.

One module owns the shape every part of the judge reads and writes (docs/missions.md, "The
result"): the plan of a mission's executes (prepare, each task with its macros applied, final),
a file's entry, an execute's entry (``interactor`` included for interactive executes), the
complete result in which nothing ran, the walk over a stored result's entries, the count of
executes, and the names of a mission's states. The runner fills the result in; running stores
it; the API, the events, the metrics and the OpenAPI document read the states from here.

Pure data: no I/O, nothing from the sandbox layer (whose ``Meta.to_dict`` produces the same meta
shape as :func:`system_error`, which a test keeps true).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from orchestrator.mission.macros import expand_execute, expand_task_files, task_macros
from orchestrator.mission.model import Execute, Mission

CONTENT_HEAD_BYTES: Final = 128
"""A file's entry carries base64 of at most this many of its first bytes."""


class MissionState(StrEnum):
    """Where a mission is. Stored, served by the API and the events, counted by the metrics."""

    QUEUED = "queued"  # stored, waiting for a worker
    RUNNING = "running"  # a worker holds it
    DONE = "done"  # ran to the end, whatever the verdicts
    CANCELLED = "cancelled"  # stopped by a cancel; its result is complete
    FAILED = "failed"  # the judge itself could not run it; every execute says why


ENDED: Final = frozenset({MissionState.DONE, MissionState.CANCELLED, MissionState.FAILED})
"""The states a mission never leaves (its result is stored)."""

CANCELLING: Final = "cancelling"
"""What cancelling a running mission answers: not a state, the mission ends ``cancelled``."""


def planned_executes(prepare: int, tasks: int, task_executes: int, final: int) -> int:
    """The executes a mission runs: prepare's, every task runs the task executes, final's."""
    return prepare + tasks * task_executes + final


def count_executes(mission: Mission) -> int:
    """How many executes ``mission`` runs (and its result has entries for)."""
    return planned_executes(
        len(mission.prepare.execute),
        len(mission.tasks.task),
        len(mission.tasks.execute),
        len(mission.final.execute),
    )


def count_in_echo(normalised: Mapping[str, Any]) -> int:
    """How many executes the normalised echo of a mission runs (each of its tasks echoes its
    own expanded list); the echo as stored, without parsing it again."""
    stages = [normalised.get("prepare") or {}, normalised.get("final") or {}]
    stages += (normalised.get("tasks") or {}).get("task") or []
    return sum(len(stage.get("execute") or []) for stage in stages)


@dataclass(frozen=True)
class StagePlan:
    """One stage's work: ``name`` is ``prepare``, ``task`` or ``final``; ``task`` the task's
    index (None outside tasks); its files (name -> URL) and executes, macros applied."""

    name: str
    task: int | None
    files: Mapping[str, str]
    executes: Sequence[Execute]


def plan(mission: Mission) -> list[StagePlan]:
    """Every stage of ``mission`` in the order it runs: prepare, each task, final. Proportional
    to the mission (tasks x executes): callers on an event loop run it in a thread."""
    stages = [StagePlan("prepare", None, mission.prepare.file, list(mission.prepare.execute))]
    for i, task in enumerate(mission.tasks.task):
        macros = task_macros(i, task)
        executes = [expand_execute(ex, macros) for ex in mission.tasks.execute]
        stages.append(StagePlan("task", i, expand_task_files(task, macros), executes))
    stages.append(StagePlan("final", None, mission.final.file, list(mission.final.execute)))
    return stages


def system_error(message: str) -> dict[str, Any]:
    """The meta of an execute the judge could not run: ``SE`` with ``message``."""
    return {
        "status": "SE",
        "message": message,
        "memory-usage": 0,
        "cpu-time-usage": 0,
        "real-time-usage": 0,
        "exit-code": 0,
        "signal": 0,
    }


def record(
    stdout_b64: str = "", stderr_b64: str = "", merged_b64: str | None = None
) -> dict[str, str]:
    """An execute's record: base64 of the first bytes of its redirected stdout and stderr, and
    of its merged file when it has one (``merged_b64`` not None)."""
    rec = {"stdout": stdout_b64, "stderr": stderr_b64}
    if merged_b64 is not None:
        rec["merged"] = merged_b64
    return rec


def file_entry(status: int = 0, head: bytes = b"") -> dict[str, Any]:
    """A fetched file's entry: its HTTP status (0: no answer, or not fetched) and base64 of its
    first bytes."""
    return {"status": status, "content": base64.b64encode(head[:CONTENT_HEAD_BYTES]).decode()}


def execute_entry(
    ex: Execute,
    meta: Mapping[str, Any],
    rec: Mapping[str, str] | None = None,
    interactor: tuple[Mapping[str, Any], Mapping[str, str] | None] | None = None,
) -> dict[str, Any]:
    """An execute's entry: ``name``, ``meta``, ``record``. An interactive execute (one with an
    ``interactor``) also gets ``interactor: {meta, record}``, from ``interactor`` (its meta and
    record) or, when its interactor never ran, ``meta`` and an empty record."""
    empty = record(merged_b64="" if ex.merged is not None else None)
    entry: dict[str, Any] = {"name": ex.name, "meta": dict(meta), "record": dict(rec or empty)}
    if ex.interactor is not None:
        imeta, irec = interactor if interactor is not None else (meta, None)
        entry["interactor"] = {"meta": dict(imeta), "record": dict(irec or record())}
    return entry


def not_run(stages: Sequence[StagePlan], message: str) -> dict[str, Any]:
    """A complete result in which no file was fetched and every execute reports ``SE`` with
    ``message``: what a mission cancelled before it started ends with, and what the runner
    starts from (running a stage overwrites its entries)."""

    def stage(plan: StagePlan) -> dict[str, Any]:
        return {
            "file": {name: file_entry() for name in plan.files},
            "execute": [execute_entry(ex, system_error(message)) for ex in plan.executes],
        }

    return {
        "prepare": stage(stages[0]),
        "task": [stage(s) for s in stages[1:-1]],
        "final": stage(stages[-1]),
    }


def stage_results(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stages of a result in running order, as :func:`plan` lists them (the same objects:
    changing one changes ``result``)."""
    return [result["prepare"], *result["task"], result["final"]]


def entries(result: Mapping[str, Any]) -> Iterator[tuple[str, int | None, int, dict[str, Any]]]:
    """Every execute entry of a stored result in running order, as ``(stage, task, index,
    entry)``; tolerant of missing parts (a result written by an older judge)."""
    for i, entry in enumerate((result.get("prepare") or {}).get("execute") or []):
        yield "prepare", None, i, entry
    for t, task in enumerate(result.get("task") or []):
        for i, entry in enumerate(task.get("execute") or []):
            yield "task", t, i, entry
    for i, entry in enumerate((result.get("final") or {}).get("execute") or []):
        yield "final", None, i, entry
