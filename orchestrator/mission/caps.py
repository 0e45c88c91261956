"""How much work one mission may ask for, checked on the raw document before validation."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from orchestrator.mission.checks import (
    _ROOT,
    TASK_ID_MACRO,
    MissionInvalid,
    MissionTooLarge,
    _render_path,
)
from orchestrator.mission.macros import _macro_pattern, _matches
from orchestrator.mission.result import planned_executes


@dataclass(frozen=True)
class MissionCaps:
    """How much work one mission may ask for; checked before validation and expansion.

    ``max_executes``: executes planned in all (prepare + tasks x task executes + final), and
    tasks. ``max_expanded_bytes``: UTF-8 bytes of every task's executes' strings (command items,
    names, redirections, scope paths) and file names, after macro expansion, summed over tasks.
    ``max_macros_per_task``, ``max_macro_key_bytes`` and ``max_macro_value_bytes``: per task, its
    macro count and each key's and value's size (keys are matched at every position of every
    string, so their count and length bound the cost of expansion). ``max_json_depth``: nesting
    of arrays and objects in the mission document. ``max_files``: file entries named in all
    (prepare's, every task's, final's), counted from the lists' lengths before anything is
    validated (validating each entry holds the GIL: 50,000 of them starved the event loop for
    over a second).
    """

    max_executes: int = 10_000
    max_expanded_bytes: int = 8 * 1024 * 1024
    max_macros_per_task: int = 256
    max_macro_value_bytes: int = 64 * 1024
    max_json_depth: int = 32
    max_macro_key_bytes: int = 32
    max_files: int = 10_000

    @classmethod
    def unlimited(cls) -> MissionCaps:
        """No caps: for missions read back from storage, which were accepted when submitted."""
        n = sys.maxsize
        return cls(n, n, n, n, n, n, n)


DEFAULT_CAPS = MissionCaps()


# --------------------------------------------------------------------------------------------
# Entry points.


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for every document: ``json.loads`` with an argument builds a new one per call
# (its scanner too), a twentieth of the cost of decoding a hello world's mission.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def json_loads(text: str | bytes | bytearray) -> Any:
    """``json.loads(text)``, refusing ``NaN`` and ``Infinity`` (``ValueError``): raises what
    ``json.loads`` raises."""
    if isinstance(text, str):
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    else:
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    return _DECODER.decode(text)


def load_json(text: str | bytes | bytearray) -> object:
    """Parse a mission's JSON text; raises :class:`MissionInvalid` at path ``mission``."""
    try:
        return json_loads(text)
    except json.JSONDecodeError as exc:
        raise MissionInvalid(
            _ROOT, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise MissionInvalid(_ROOT, "is not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # NaN/Infinity, integers too long, undecodable bytes
        raise MissionInvalid(_ROOT, f"is not valid JSON: {exc}") from exc


def _check_depth(doc: object, limit: int) -> None:
    """Refuse arrays and objects nested deeper than ``limit``; iterative, stops at the limit.

    Counts levels only; the path of the first node too deep is found again when there is one
    (a tuple per node cost half of this check on every submission)."""
    stack: list[tuple[object, int]] = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth >= limit:
            _refuse_depth(doc, limit)
        depth += 1
        for child in children:
            if isinstance(child, (dict, list)):  # a tuple: faster than a union here
                stack.append((child, depth))


def _refuse_depth(doc: object, limit: int) -> NoReturn:
    """Raise ``MissionInvalid`` at the first node ``_check_depth`` finds deeper than ``limit``
    (the same walk, with paths)."""
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
    raise AssertionError("_refuse_depth: nothing is nested deeper than the limit")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _execute_strings(execute: object) -> list[str]:
    """The strings of a raw (unvalidated) execute that macros apply to; odd types are skipped
    (validation reports them)."""
    if not isinstance(execute, dict):
        return []
    out = [
        execute[k] for k in ("name", "meta", "stdin", "stdout", "stderr", "merged") if k in execute
    ]
    command = execute.get("command")
    if isinstance(command, list):
        out += command
    compare = execute.get("compare")
    if isinstance(compare, dict):
        out += list(compare.values())
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


def _dict_len(doc: object, *keys: str) -> int:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return len(doc) if isinstance(doc, dict) else 0


def _check_file_count(doc: object, tasks: list[Any], max_files: int) -> None:
    """Refuse more than ``max_files`` file entries in all, counted from the documents' sizes
    alone (arithmetic, like the executes); the path names the part holding the most."""
    parts = {
        f"{_ROOT}.prepare.file": _dict_len(doc, "prepare", "file"),
        f"{_ROOT}.tasks.task": sum(_dict_len(t, "file") for t in tasks),
        f"{_ROOT}.final.file": _dict_len(doc, "final", "file"),
    }
    total = sum(parts.values())
    if total > max_files:
        where = max(parts, key=lambda k: parts[k])
        raise MissionTooLarge(
            where,
            f"the mission names {total} files (prepare, every task and final); "
            f"a mission may name at most {max_files}",
        )


def _check_caps(doc: object, caps: MissionCaps) -> None:
    """Refuse a raw mission document that asks for more work than ``caps``, before validation.

    Work here is bounded by the document's size (the expanded size is computed only once the
    unexpanded one fits the cap). Raises :class:`MissionInvalid` for nesting and
    :class:`MissionTooLarge` for the other caps, each naming the field.
    """
    _check_depth(doc, caps.max_json_depth)
    tasks = _list_at(doc, "tasks", "task")
    task_executes = _list_at(doc, "tasks", "execute")
    planned = planned_executes(
        len(_list_at(doc, "prepare", "execute")),
        len(tasks),
        len(task_executes),
        len(_list_at(doc, "final", "execute")),
    )
    _check_file_count(doc, tasks, caps.max_files)
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
