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

The package's modules: ``checks`` (field checks, errors), ``caps`` (work bounds on the raw
document), ``model`` (the pydantic models), ``macros`` (expansion), ``parse`` (the entry point
and the normalised echo).
"""

from __future__ import annotations

from orchestrator.mission.caps import MissionCaps, load_json, plans_little
from orchestrator.mission.checks import (
    RESERVED_PAYLOAD_KEYS,
    TASK_ID_MACRO,
    MissionInvalid,
    MissionTooLarge,
)
from orchestrator.mission.macros import expand, expand_execute, expand_task_files, task_macros
from orchestrator.mission.model import (
    Execute,
    Interactor,
    Mission,
    Record,
    Return,
    Scope,
    Stage,
    Task,
    Tasks,
)
from orchestrator.mission.parse import normalise, parse_mission
from orchestrator.paths import has_control

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
