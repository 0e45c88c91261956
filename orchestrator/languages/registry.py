"""The language registry: every language the engine's images declare, with explicit precedence.

Built from the engine's image list (``ImageInfo``: id, tags, labels, creation time); pure, so
the precedence rules are unit-tested without an engine. Precedence, when several images declare
one language id (or one Judge0 id, or one alias):

1. a ``fallback`` entry (judge/default's copies of C, C++ and Python) loses to any other;
2. an image of the project's own ``judge/`` repositories loses to any other image: a custom
   image that re-declares a language replaces the shipped one;
3. between equals, the newer image wins (then the name decides, so the choice is stable).

Every replacement is reported in ``notes`` (the server logs them at start and on change).

An image built FROM a language image inherits its labels without declaring anything: such an
image (its ``judge.languages.image`` names another image that carries the same label) is left
out while that image is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.languages.model import LABEL, LABEL_IMAGE, Language, parse_label
from orchestrator.languages.semver import parse_version, satisfies

PROJECT_REPOSITORY = "judge/"


@dataclass(frozen=True)
class ImageInfo:
    """What the registry needs of one image: the engine's image list gives it in one call."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    created: float = 0.0
    digests: tuple[str, ...] = ()  # name@sha256:..., another way a mission may name it


def short_tag(tag: str) -> str:
    """``judge/python3:latest`` -> ``judge/python3`` (what missions and users write)."""
    return tag[: -len(":latest")] if tag.endswith(":latest") else tag


def _rank(entry: tuple[Language, float]) -> tuple[int, float]:
    """Larger wins (see the module's docstring); the caller orders equals by name."""
    language, created = entry
    if language.fallback:
        return 0, created
    if language.image.startswith(PROJECT_REPOSITORY):
        return 1, created
    return 2, created


@dataclass(frozen=True)
class LanguageRegistry:
    """An immutable snapshot of the languages on the engine (see the module's docstring)."""

    languages: Mapping[str, Language] = field(default_factory=dict)
    judge0: Mapping[int, Language] = field(default_factory=dict)
    aliases: Mapping[str, Language] = field(default_factory=dict)
    declared: Mapping[str, tuple[Language, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def all(self) -> list[Language]:
        """Every language, sorted by id."""
        return [self.languages[k] for k in sorted(self.languages)]

    def get(self, language_id: str) -> Language | None:
        return self.languages.get(language_id)

    def by_judge0_id(self, judge0_id: int) -> Language | None:
        return self.judge0.get(judge0_id)

    def find(self, name: str) -> Language | None:
        """The language with this id, else the one with this alias (case-insensitive)."""
        return self.languages.get(name) or self.aliases.get(name.lower())

    def providers(self, language_id: str) -> tuple[Language, ...]:
        """Every image's declaration of ``language_id``, the winner first."""
        return self.declared.get(language_id, ())

    def resolve(self, name: str, version_range: str = "*") -> Language | None:
        """The language a Piston-style client means: ``name`` is an id, an alias or a Piston
        language name (case-insensitive); the newest version in ``version_range`` wins (npm
        ranges: ``*``, ``3.x``, ``3.10``, ``^1.2``, ``>=1 <2``, ...). None when nothing matches
        or the range does not parse."""
        wanted = name.lower()
        candidates = [
            lang
            for lang in self.languages.values()
            if wanted == lang.id
            or wanted in lang.aliases
            or (lang.piston_language is not None and wanted == lang.piston_language.lower())
        ]
        try:
            matching = [lang for lang in candidates if satisfies(lang.version, version_range)]
        except ValueError:
            return None
        if not matching:
            return None
        return max(matching, key=lambda lang: (parse_version(lang.version), lang.id == wanted))

    def images(self) -> set[str]:
        """The images that provide at least one language."""
        return {lang.image for lang in self.languages.values()}


def build_registry(images: Iterable[ImageInfo]) -> LanguageRegistry:
    """The registry of ``images`` (those without a ``judge.languages`` label are ignored)."""
    infos = [i for i in images if LABEL in i.labels and i.tags]
    by_tag = {short_tag(t): info for info in infos for t in info.tags}
    notes: list[str] = []
    entries: list[tuple[Language, float]] = []
    for info in sorted(infos, key=lambda i: sorted(i.tags)):
        name = _declaring_name(info, by_tag)
        if name is None:
            continue
        parsed, problems = parse_label(info.labels[LABEL], name)
        notes += problems
        entries += [(lang, info.created) for lang in parsed]

    # Stable sorts: by rank, and between equals by the image's name.
    entries.sort(key=lambda e: e[0].image)
    entries.sort(key=_rank, reverse=True)
    languages: dict[str, Language] = {}
    declared: dict[str, list[Language]] = {}
    for lang, _created in entries:
        declared.setdefault(lang.id, []).append(lang)
        winner = languages.setdefault(lang.id, lang)
        if winner is not lang and not lang.fallback:
            notes.append(f"language {lang.id!r}: {winner.image} replaces {lang.image}")

    judge0: dict[int, Language] = {}
    aliases: dict[str, Language] = {}
    for lang, _created in entries:
        if languages[lang.id] is not lang:
            continue
        for n in lang.judge0_ids:
            owner = judge0.setdefault(n, lang)
            if owner is not lang:
                notes.append(
                    f"Judge0 id {n}: {owner.id!r} ({owner.image}) replaces {lang.id!r} "
                    f"({lang.image})"
                )
        for alias in lang.aliases:
            if alias not in languages:  # an id is never shadowed by another's alias
                aliases.setdefault(alias, lang)
    return LanguageRegistry(
        languages=languages,
        judge0=judge0,
        aliases=aliases,
        declared={k: tuple(v) for k, v in declared.items()},
        notes=tuple(notes),
    )


def _declaring_name(info: ImageInfo, by_tag: Mapping[str, ImageInfo]) -> str | None:
    """The name ``info`` declares its languages under, or None when it only inherited them from
    the image its ``judge.languages.image`` names (which is there, with the same label)."""
    tags = sorted(short_tag(t) for t in info.tags)
    declared = info.labels.get(LABEL_IMAGE)
    if declared is not None:
        declared = short_tag(declared)
        if declared in tags:
            return declared
        parent = by_tag.get(declared)
        if parent is not None and parent.labels.get(LABEL) == info.labels[LABEL]:
            return None
    return tags[0]


def fingerprint(images: Iterable[ImageInfo]) -> frozenset[tuple[str, tuple[str, ...]]]:
    """What decides a registry: each image's id and tags (a rebuild or a retag changes it)."""
    return frozenset((i.id, tuple(sorted(i.tags))) for i in images)


__all__ = ["ImageInfo", "LanguageRegistry", "build_registry", "fingerprint", "short_tag"]
