"""Piston's runtimes from the judge's language registry, and Piston's version resolution.

A request names a language (its Piston name or an alias) and a version selector: npm's semver
ranges (``*``, ``3.x``, ``3.11.x``, ``>=3.8``, ``^3``, an exact ``3.11.2``), matched as the
registry matches them (``orchestrator.languages.semver``), the latest match winning. Clients pin
the versions of Piston's public instance (``3.10.0``, ``18.15.0``, ``10.2.0``); when nothing
matches, a selector that pins a major number runs on the latest version of that major the judge
has (the answer's ``version`` says which), unless ``strict`` (then the request is refused, as
Piston refuses it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.languages.model import Language
from orchestrator.languages.semver import parse_version
from orchestrator.languages.semver import satisfies as in_range

# A selector longer than this is no version: refused before the range parser sees it.
MAX_SELECTOR = 128

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
    # What the compile step needs at least (``memory_limit`` KiB, ``time_limit`` CPU ms).
    compile_limits: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

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


def runtime_of(language: Language) -> PistonRuntime | None:
    """A registry language as a Piston runtime, or None for one Piston does not know (its entry
    has no Piston name: plain text, multi-file programs)."""
    if language.piston_language is None:
        return None
    return PistonRuntime(
        language=language.piston_language,
        version=language.version,
        aliases=language.aliases,
        runtime=language.piston_runtime,
        image=language.image,
        source_file=language.source_file,
        run=language.run,
        compile=language.compile,
        language_id=language.id,
        compile_limits=dict(language.compile_limits),
    )


def piston_runtimes(languages: Iterable[Language]) -> list[PistonRuntime]:
    """The registry's languages that Piston knows, as Piston runtimes, in the given order."""
    return [rt for rt in map(runtime_of, languages) if rt is not None]


def _key(version: str) -> tuple[int, int, int]:
    try:
        return parse_version(version)
    except ValueError:
        return (0, 0, 0)


def satisfies(version: str, selector: str) -> bool:
    """Whether ``version`` is in the npm semver range ``selector``; a selector that does not
    parse matches nothing (as in npm). Never raises."""
    if len(selector) > MAX_SELECTOR:
        return False
    try:
        return in_range(version, selector)
    except ValueError:
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
    "piston_runtimes",
    "resolve",
    "runtime_of",
    "satisfies",
]
