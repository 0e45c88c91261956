"""The one rule for a relative path and the one rule for control characters.

Every path the judge places, reads or stores relative to some root goes through
:func:`check_relative_path`: a mission's file names, redirections and scope paths (inside the
sandbox), the members of tars it builds and vets, the entries of archives users upload, and the
files of a WebGME artifact. Names a user gives (missions, uploaded archives, blobs) must also
pass :func:`check_name`, which adds the control-character rule: a name with a newline or an
escape breaks logs, listings and tools. Names a sandbox's own programs made (the members of an
export) are only held to the path rule: refusing them would fail an execute for a file name the
mission never chose.

Both are pure and cheap (a regex scan and a split): every path of every mission goes through
them at submission.
"""

from __future__ import annotations

import re

# C0, DEL, C1. One C scan instead of a Python loop per character.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def show(value: str, limit: int = 80) -> str:
    """The value quoted for a message, shortened when long; never raises on odd characters."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


def has_control(value: str) -> bool:
    """Whether ``value`` holds a C0/C1 control character or DEL (newlines, escapes, NUL...)."""
    return _CONTROL.search(value) is not None


def check_relative_path(path: str) -> str:
    """``path`` normalised (no ``.`` or empty components) if it names a place under its root.

    Refused, with a ``ValueError`` that says why: an empty path or one holding NUL, an absolute
    path, a ``..`` component, a path naming the root itself (``.``, ``./``). Sizes are the
    callers' business (a mission caps its paths as Linux does; an archive caps its headers).
    """
    if not path or "\x00" in path:
        raise ValueError("path must be a non-empty string without NUL")
    if path.startswith("/"):
        raise ValueError(f"{show(path)} is absolute: it must be a relative path")
    components = path.split("/")
    if ".." in components:
        raise ValueError(f"{show(path)} contains '..' as a component")
    parts = [c for c in components if c not in ("", ".")]
    if not parts:
        raise ValueError(f"{show(path)} names the sandbox itself, not a path inside it")
    return "/".join(parts)


def check_name(path: str) -> str:
    """:func:`check_relative_path` for a name a user gives, which must also hold no control
    character. Raises ``ValueError`` that says why."""
    if has_control(path):
        raise ValueError(f"{show(path)} contains a control character")
    return check_relative_path(path)
