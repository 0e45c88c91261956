"""Semantic versions and the npm-style ranges Piston's clients send (``*``, ``3.x``, ``^1.2``).

Only what a language registry needs: versions are ``MAJOR.MINOR.PATCH`` (the image build writes
them so); ranges are the npm subset clients use: ``*``/``x``/empty, partial versions (``3``,
``3.10``, ``3.x``), exact versions, the comparators ``=``, ``<``, ``<=``, ``>``, ``>=``, ``^``
and ``~``, space-separated conjunctions and ``||`` alternatives. Pure; no I/O.
"""

from __future__ import annotations

import re

Version = tuple[int, int, int]

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")
_COMPARATOR = re.compile(r"^(<=|>=|<|>|=|\^|~)?\s*(.*)$")
# Any version matches this upper bound.
_TOP: Version = (1 << 62, 0, 0)


def parse_version(text: str) -> Version:
    """``"17.0.9"`` -> ``(17, 0, 9)``; raises ``ValueError`` for anything else."""
    m = _VERSION.match(text.strip())
    if m is None:
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {text!r}")
    return int(m[1]), int(m[2]), int(m[3])


def _partial(text: str) -> list[int]:
    """The numbers of a partial version before its first wildcard (``"3.x"`` -> ``[3]``)."""
    m = _PARTIAL.match(text)
    if m is None:
        raise ValueError(f"not a version: {text!r}")
    parts: list[int] = []
    for group in m.groups():
        if group is None or not group.isdigit():
            break
        parts.append(int(group))
    return parts


def _bump(parts: list[int]) -> Version:
    """The first version after every version starting with ``parts`` (``[3]`` -> 4.0.0)."""
    if not parts:
        return _TOP
    return _floor([*parts[:-1], parts[-1] + 1])


def _floor(parts: list[int]) -> Version:
    padded = [*parts, 0, 0, 0]
    return padded[0], padded[1], padded[2]


def _interval(comparator: str) -> tuple[Version, Version, bool, bool]:
    """``(low, high, low_inclusive, high_inclusive)`` of one comparator."""
    m = _COMPARATOR.match(comparator)
    assert m is not None  # the pattern matches every string
    op, rest = m[1] or "", m[2].strip()
    parts = _partial(rest) if rest not in ("", "*", "x", "X") else []
    low = _floor(parts)
    if op in ("", "="):
        if len(parts) == 3:
            return low, low, True, True
        return low, _bump(parts), True, False
    if op == ">=":
        return low, _TOP, True, True
    if op == ">":
        return (_bump(parts), _TOP, True, True) if len(parts) < 3 else (low, _TOP, False, True)
    if op == "<":
        return (0, 0, 0), low, True, False
    if op == "<=":
        if len(parts) == 3:
            return (0, 0, 0), low, True, True
        return (0, 0, 0), _bump(parts), True, False
    if op == "~":
        # ~1.2.3 := >=1.2.3 <1.3.0; ~1 := >=1.0.0 <2.0.0
        return low, _bump(parts[:2] if len(parts) > 1 else parts), True, False
    # ^: the left-most non-zero number stays the same.
    keep = next((i for i, n in enumerate(parts) if n != 0), len(parts) - 1)
    return low, _bump(parts[: max(keep, 0) + 1]), True, False


def satisfies(version: str | Version, spec: str) -> bool:
    """Whether ``version`` is in the range ``spec``; raises ``ValueError`` for a bad spec."""
    v = parse_version(version) if isinstance(version, str) else version
    for alternative in spec.split("||"):
        comparators = _split(alternative)
        if all(_inside(v, *_interval(c)) for c in comparators or ["*"]):
            return True
    return False


def _split(alternative: str) -> list[str]:
    """An alternative's comparators; ``>= 1.2`` (operator and version apart) is one."""
    out: list[str] = []
    for token in alternative.split():
        if out and out[-1] in ("<", "<=", ">", ">=", "=", "^", "~"):
            out[-1] += token
        else:
            out.append(token)
    return out


def _inside(v: Version, low: Version, high: Version, low_in: bool, high_in: bool) -> bool:
    above = v >= low if low_in else v > low
    below = v <= high if high_in else v < high
    return above and below


def valid_range(spec: str) -> bool:
    """Whether ``spec`` parses as a range."""
    try:
        satisfies((0, 0, 0), spec)
    except ValueError:
        return False
    return True


__all__ = ["Version", "parse_version", "satisfies", "valid_range"]
