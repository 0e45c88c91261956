"""Macros: plain string replacement, longest key first, in one pass; per-task expansion."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import (
    ValidationError,
)

from orchestrator.mission.checks import (
    TASK_ID_MACRO,
    MissionInvalid,
    _check_file_name,
    _errors_of,
    _render_path,
)
from orchestrator.mission.model import Execute, Task
from orchestrator.paths import show as _show

# --------------------------------------------------------------------------------------------
# Macros.


_TRIE_MAX_KEY = 512  # deeper tries would nest regex groups past what the compiler takes


def _trie_regex(keys: Iterable[str]) -> str:
    """A regex matching the longest of ``keys`` at a position, shaped as their prefix tree.

    A flat alternation tries every key at every position (keys sharing a long prefix make that
    quadratic); the tree tries each character once, so a position costs at most the longest
    key's length. Greedy optional groups make the longest key win, as the flat form ordered by
    length did.
    """
    trie: dict[str, Any] = {}
    for key in keys:
        node = trie
        for ch in key:
            node = node.setdefault(ch, {})
        node[""] = {}  # marks the end of a key ("" is never a character)

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        alt = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{alt})?" if "" in node else alt

    return build(trie)


@functools.lru_cache(maxsize=256)
def _macro_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    if max(map(len, keys)) > _TRIE_MAX_KEY:
        return re.compile("|".join(re.escape(k) for k in keys))
    return re.compile(_trie_regex(keys))


_SCAN_CHUNK = 4 * 1024


def _matches(pattern: re.Pattern[str], text: str, longest: int) -> Iterator[re.Match[str]]:
    """The matches ``pattern.finditer(text)`` gives, found window by window.

    One ``finditer`` over megabytes without a match is one long C call that holds the GIL and so
    stalls the event loop of the thread that is waiting; windows of ``_SCAN_CHUNK`` characters
    (plus ``longest``, the longest key, so no match is cut short) keep each call short.
    """
    pos, end = 0, len(text)
    while pos < end:
        window = min(end, pos + _SCAN_CHUNK + longest)
        match = pattern.search(text, pos, window)
        if match is not None and match.start() < pos + _SCAN_CHUNK:
            yield match
            pos = max(match.end(), match.start() + 1)
        else:
            pos += _SCAN_CHUNK


def expand(text: str, macros: Mapping[str, str]) -> str:
    """Replace every macro key in ``text`` by its value, in one left-to-right pass.

    At each position the longest key that matches wins; a replacement is never scanned again,
    so a value that contains a key stays as it is. Empty keys are ignored. Never raises.
    """
    keys = tuple(sorted((k for k in macros if k), key=lambda k: (-len(k), k)))
    if not keys or not text:
        return text
    pieces: list[str] = []
    done = 0
    for match in _matches(_macro_pattern(keys), text, len(keys[0])):
        pieces += (text[done : match.start()], macros[match.group(0)])
        done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def task_macros(task_index: int, task: Task) -> dict[str, str]:
    """The macros of the task at ``task_index``: its own plus ``__TASK_ID__`` = the index."""
    return {**task.macro, TASK_ID_MACRO: str(task_index)}


def expand_execute(
    execute: Execute, macros: Mapping[str, str], *, path: str = "execute"
) -> Execute:
    """``execute`` with the macros applied to each of its strings, validated again.

    The strings are the command items (or the ``compare`` paths), ``name``, ``meta``, ``stdin``,
    ``stdout``, ``stderr``, ``merged``, the scope's ``import``/``export`` paths and the
    interactor's command, ``meta``, ``stderr`` and ``private`` paths. When no macro occurs,
    ``execute`` itself is returned.
    Raises :class:`MissionInvalid` (paths under ``path``) when an expanded value breaks a rule,
    e.g. a macro value that puts ``..`` into a file name; never for a mission that
    :func:`parse_mission` accepted.
    """
    raw = execute.model_dump(by_alias=True, exclude_none=True)
    done = dict(raw)
    for key in ("name", "meta", "stdin", "stdout", "stderr"):
        done[key] = expand(raw[key], macros)
    if "merged" in raw:
        done["merged"] = expand(raw["merged"], macros)
    if "command" in raw:
        done["command"] = [expand(arg, macros) for arg in raw["command"]]
    if "compare" in raw:
        done["compare"] = {key: expand(value, macros) for key, value in raw["compare"].items()}
    if "interactor" in raw:
        inter = dict(raw["interactor"])
        inter["command"] = [expand(arg, macros) for arg in inter["command"]]
        inter["meta"] = expand(inter["meta"], macros)
        inter["stderr"] = expand(inter["stderr"], macros)
        inter["private"] = [expand(p, macros) for p in inter["private"]]
        done["interactor"] = inter
    done["scope"] = {
        **raw["scope"],
        "import": [expand(p, macros) for p in raw["scope"]["import"]],
        "export": [expand(p, macros) for p in raw["scope"]["export"]],
    }
    if done == raw:
        return execute
    try:
        return Execute.model_validate(done)
    except ValidationError as exc:
        errors = _errors_of(exc, path)
        for error in errors:
            error["message"] = f"after macro expansion, {error['message']}"
        raise MissionInvalid.from_errors(errors) from exc


def expand_task_files(
    task: Task, macros: Mapping[str, str], *, path: str = "file"
) -> dict[str, str]:
    """The task's files (name -> URL) with the macros applied to the names, not to the URLs.

    Raises :class:`MissionInvalid` (paths ``<path>.<name>``, named as submitted) when an
    expanded name breaks the path rules or two names come to name the same file; never for a
    mission that :func:`parse_mission` accepted.
    """
    files: dict[str, str] = {}
    owners: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for name, url in task.file.items():
        expanded = expand(name, macros)
        where = _render_path(path, [name])
        try:
            _check_file_name(expanded)
        except ValueError as exc:
            errors.append({"path": where, "message": f"after macro expansion, {exc}"})
            continue
        key = posixpath.normpath(expanded)
        if key in owners:
            errors.append(
                {
                    "path": where,
                    "message": f"after macro expansion, {_show(name)} and "
                    f"{_show(owners[key])} name the same file {_show(expanded)}",
                }
            )
            continue
        owners[key] = name
        files[expanded] = url
    if errors:
        raise MissionInvalid.from_errors(errors)
    return files
