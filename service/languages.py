"""The server's language registry, kept in step with the engine's images without a restart.

One engine call (the list of judge images, label ``judge.supervisor``; ~10 ms here) tells
whether any image was built, retagged or removed: the registry is rebuilt only when the images'
ids or tags changed. The same list says which images this node has (``images``): on a shared
PostgreSQL queue a node claims only missions whose image it has. That call runs at start, every
``languages_refresh_s``, and on demand (at most once per ``max_age_s``) when a client lists the
languages or names one the registry does not know, so an image built a moment ago is found at
once. While the engine does not answer the last registry stays in force.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator.errors import JudgeError
from orchestrator.languages import (
    ImageInfo,
    Language,
    LanguageRegistry,
    build_registry,
    fingerprint,
    short_tag,
)

log = logging.getLogger(__name__)

ListImages = Callable[[], Awaitable[list[ImageInfo]]]


def image_infos(summaries: list[dict[str, Any]]) -> list[ImageInfo]:
    """The engine's image list entries as the registry reads them (untagged ones dropped)."""
    out = []
    for doc in summaries:
        tags = tuple(t for t in doc.get("RepoTags") or () if t and t != "<none>:<none>")
        out.append(
            ImageInfo(
                id=str(doc.get("Id", "")),
                tags=tags,
                labels=dict(doc.get("Labels") or {}),
                created=float(doc.get("Created") or 0),
                digests=tuple(d for d in doc.get("RepoDigests") or () if d and "<none>" not in d),
            )
        )
    return out


def node_images(infos: list[ImageInfo]) -> frozenset[str]:
    """Every name a mission may give one of ``infos``: its tags (``judge/x`` for
    ``judge/x:latest``), digests and id (``sha256:<64 hex>``, the hex alone, its 12-digit
    short form)."""
    names = {short_tag(t) for info in infos for t in info.tags}
    names |= {d for info in infos for d in info.digests}
    for info in infos:
        if info.id:
            hex_id = info.id.removeprefix("sha256:")
            names |= {info.id, hex_id, hex_id[:12]}
    return frozenset(names)


class Languages:
    """The current ``LanguageRegistry`` and how it is refreshed; the lookups delegate to it."""

    def __init__(self, list_images: ListImages) -> None:
        self._list_images = list_images
        self.registry = LanguageRegistry()
        self._fingerprint: frozenset[Any] | None = None
        self._checked_at = -float("inf")
        self._lock = asyncio.Lock()
        self._engine_ok = True
        self.images: frozenset[str] | None = None

    async def refresh(self, max_age_s: float = 0.0) -> LanguageRegistry:
        """Look at the engine's images again unless that was done less than ``max_age_s`` ago
        and return the registry (the last one when the engine does not answer: never raises
        for the engine)."""
        if time.monotonic() - self._checked_at < max_age_s:
            return self.registry
        async with self._lock:
            if time.monotonic() - self._checked_at < max_age_s:
                return self.registry  # another caller looked while this one waited
            try:
                infos = await self._list_images()
            except JudgeError as e:
                if self._engine_ok:
                    log.warning("languages: cannot list the engine's images: %s", e)
                self._engine_ok = False
                # A failed look counts too: during an outage callers ask the engine at most
                # once per max_age_s, not at every request.
                self._checked_at = time.monotonic()
                return self.registry
            self._engine_ok = True
            self._checked_at = time.monotonic()
            current = fingerprint(infos)
            if current != self._fingerprint:
                self._fingerprint = current
                self.images = node_images(infos)
                self._install(build_registry(infos))
        return self.registry

    def _install(self, registry: LanguageRegistry) -> None:
        before = {lang.id: (lang.image, lang.version) for lang in self.registry.all()}
        after = {lang.id: (lang.image, lang.version) for lang in registry.all()}
        self.registry = registry
        for note in registry.notes:
            log.warning("languages: %s", note)
        if before != after:
            log.info(
                "languages: %s",
                ", ".join(f"{k} {v[1]} ({v[0]})" for k, v in sorted(after.items())) or "none",
            )

    async def run_every(self, interval_s: float) -> None:
        """Refresh every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:  # a bug here must not end the refreshes for good
                log.exception("languages: refresh failed")

    # -- lookups (the current registry's; see orchestrator.languages.registry) -------------------

    def all(self) -> list[Language]:
        return self.registry.all()

    def get(self, language_id: str) -> Language | None:
        return self.registry.get(language_id)

    def by_judge0_id(self, judge0_id: int) -> Language | None:
        return self.registry.by_judge0_id(judge0_id)

    def find(self, name: str) -> Language | None:
        return self.registry.find(name)

    def resolve(self, name: str, version_range: str = "*") -> Language | None:
        return self.registry.resolve(name, version_range)


__all__ = ["Languages", "image_infos", "node_images"]
