"""A node on a shared queue asks the store only for missions whose image it has: the names it
knows at the moment of each claim go with the claim (the store's filter itself is tested against
both engines in tests/store)."""

from __future__ import annotations

from collections.abc import Collection
from types import SimpleNamespace
from typing import Any

from service.pipeline.workqueue import SharedQueue


class FakeMissions:
    def __init__(self) -> None:
        self.asked: list[Collection[str] | None] = []

    async def claim_next(
        self, owner: str, lease_s: float, images: Collection[str] | None = None
    ) -> Any:
        self.asked.append(images)
        return SimpleNamespace(id=len(self.asked))


async def test_each_claim_carries_the_nodes_current_images() -> None:
    missions = FakeMissions()
    store: Any = SimpleNamespace(missions=missions)
    known: list[frozenset[str] | None] = [None]
    queue = SharedQueue(store, owner="a", lease_s=5, poll_s=1, images=lambda: known[0])
    assert await queue.take() == 1
    known[0] = frozenset({"judge/default", "judge/java"})
    assert await queue.take() == 2
    assert missions.asked == [None, frozenset({"judge/default", "judge/java"})]
    # Without a provider (tests, old callers) nothing is filtered.
    plain = SharedQueue(store, owner="b", lease_s=5, poll_s=1)
    await plain.take()
    assert missions.asked[-1] is None
