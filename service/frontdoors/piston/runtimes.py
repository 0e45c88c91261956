"""Piston's runtimes from the judge's language registry, and Piston's version resolution.

A request names a language (its Piston name or an alias) and a version selector: npm's semver
ranges (``*``, ``3.x``, ``3.11.x``, ``>=3.8``, an exact ``3.11.2``), matched with a port of the
very library Piston uses, the latest match winning. Clients pin the versions of Piston's public
instance (``3.10.0``, ``18.15.0``, ``10.2.0``); when nothing matches, a selector that starts
with a major number runs on the latest version of the same major the judge has (the answer's
``version`` says which), unless ``strict`` (then the request is refused, as Piston refuses it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nodesemver  # type: ignore[import-untyped]

# A selector longer than this is no version: refused before the range parser sees it.
MAX_SELECTOR = 128

_NUMBERS = re.compile(r"\d+(?:\.\d+){0,2}")
# Selectors that pin a major number: 3, 3.10, 3.10.0, 3.x, 3.10.x, v3.10.0, 3.10.0-alpha.7.
_PINNED_MAJOR = re.compile(
    r"\s*[v=]?\s*(\d+)(?:\.(?:\d+|[xX*])(?:\.(?:\d+|[xX*]))?)?(?:-[0-9A-Za-z.-]+)?\s*"
)


@dataclass(frozen=True)
class PistonRuntime:
    """One language as Piston lists it, and how the judge runs it.

    ``version`` is semver (``X.Y.Z``); ``compile``/``run`` are argv templates with ``{file}``
    (the entry file's name) and ``{stem}`` (that name without its extension).
    """

    language: str
    version: str
    aliases: tuple[str, ...]
    runtime: str | None
    image: str
    source_file: str
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    language_id: str = ""
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def compiled(self) -> bool:
        return self.compile is not None

    def listing(self) -> dict[str, Any]:
        """The runtime as ``GET /api/v2/runtimes`` lists it."""
        out: dict[str, Any] = {
            "language": self.language,
            "version": self.version,
            "aliases": list(self.aliases),
        }
        if self.runtime:
            out["runtime"] = self.runtime
        return out


def semver_of(version: str) -> str:
    """A probed version as semver: ``3.11`` -> ``3.11.0``, ``17.0.9+9`` -> ``17.0.9``;
    ``0.0.0`` when it holds no number."""
    found = _NUMBERS.search(version or "")
    if found is None:
        return "0.0.0"
    parts = found.group(0).split(".")
    return ".".join([*parts, "0", "0"][:3])


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in semver_of(version).split("."))


def satisfies(version: str, selector: str) -> bool:
    """Whether ``version`` is in the npm semver range ``selector``; never raises."""
    if len(selector) > MAX_SELECTOR:
        return False
    try:
        return bool(nodesemver.satisfies(version, selector, False))
    except Exception:  # a selector the port cannot parse matches nothing, as in npm
        return False


def pinned_major(selector: str) -> int | None:
    """The major number a selector pins (``3.10.0``, ``3.x``, ``3.10.x``: 3), else None
    (``*``, ``^3``, ``>=3``: ranges that say more than a version)."""
    if len(selector) > MAX_SELECTOR:
        return None
    match = _PINNED_MAJOR.fullmatch(selector)
    return int(match.group(1)) if match else None


def candidates(runtimes: Iterable[PistonRuntime], language: str) -> list[PistonRuntime]:
    """Runtimes whose Piston name or one of whose aliases is ``language``."""
    return [rt for rt in runtimes if rt.language == language or language in rt.aliases]


def resolve(
    runtimes: Sequence[PistonRuntime], language: str, selector: str, *, strict: bool
) -> PistonRuntime | None:
    """The runtime a request for ``language`` at ``selector`` runs on, or None (Piston's
    "runtime is unknown"): the latest version matching, else (unless ``strict``) the latest
    of the major number the selector pins."""
    named = candidates(runtimes, language)
    matching = [rt for rt in named if satisfies(rt.version, selector)]
    if not matching and not strict:
        major = pinned_major(selector)
        if major is not None:
            matching = [rt for rt in named if _key(rt.version)[0] == major]
    if not matching:
        return None
    return max(matching, key=lambda rt: _key(rt.version))


__all__ = [
    "MAX_SELECTOR",
    "PistonRuntime",
    "candidates",
    "pinned_major",
    "resolve",
    "satisfies",
    "semver_of",
]
