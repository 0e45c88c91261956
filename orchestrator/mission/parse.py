"""The one entry point (:func:`parse_mission`) and the normalised echo (:func:`normalise`)."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from orchestrator.mission.caps import DEFAULT_CAPS, MissionCaps, _check_caps, load_json
from orchestrator.mission.checks import _ROOT, MissionInvalid, _errors_of
from orchestrator.mission.macros import expand_execute, expand_task_files, task_macros
from orchestrator.mission.model import Execute, Mission, Stage, Task

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
