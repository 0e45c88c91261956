"""Callback delivery on its own: no Docker, no mission run; missions are put in the store in the
state a finished run leaves them, and a real receiver answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.pipeline.callbacks import DELIVERY_HEADER, CallbackPolicy
from service.pipeline.delivery import CallbackDelivery, DeliveryCounters
from service.pipeline.running import _pending_row
from service.store import PgStore, SqliteStore, Storage
from tests.service.support import Receiver

RESULT: dict[str, Any] = {
    "prepare": {"file": {}, "execute": []},
    "task": [],
    "final": {"file": {}, "execute": []},
}
POLICY = CallbackPolicy(attempts=5, initial_wait_s=0.01, max_wait_s=0.05, secret="s3cret")


async def finished(store: Storage, url: str) -> tuple[int, str]:
    """A mission stored as done, its callback due; returns (id, delivery id)."""
    normalised = {"return": {"url": url}}
    mission_id = await store.missions.insert_mission("t", {}, normalised)
    row = await store.missions.claim(mission_id, "node", 60)
    assert row is not None
    assert await store.missions.finish(mission_id, "done", RESULT, "node")  # now due
    return mission_id, row.delivery_id


async def test_a_due_callback_is_delivered_once_with_its_delivery_id(
    tmp_path: Path, receiver: Receiver
) -> None:
    store = await SqliteStore.open(tmp_path / "db")
    receiver.responses.append((503, {}))  # one failed attempt first
    try:
        async with aiohttp.ClientSession() as session:
            counters = DeliveryCounters()
            delivery = CallbackDelivery(store, session, POLICY, counters)
            await delivery.start()
            mission_id, delivery_id = await finished(store, receiver.url)
            delivery.due(mission_id)
            first = await receiver.next(10)
            second = await receiver.next(10)
            assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER] == delivery_id
            await delivery.stop(10)
        row = await store.missions.get_mission(mission_id)
        assert row is not None
        assert (row.callback_state, row.callback_attempts) == ("delivered", 2)
        assert (counters.callbacks_delivered, counters.callback_attempts) == (1, 2)
    finally:
        await store.close()


async def test_callbacks_pending_at_start_are_resumed(tmp_path: Path, receiver: Receiver) -> None:
    store = await SqliteStore.open(tmp_path / "db")
    try:
        _mission_id, delivery_id = await finished(store, receiver.url)  # "before a crash"
        async with aiohttp.ClientSession() as session:
            delivery = CallbackDelivery(store, session, POLICY, DeliveryCounters())
            await delivery.start()
            got = await receiver.next(10)
            assert got.headers[DELIVERY_HEADER] == delivery_id
            await delivery.stop(10)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_two_nodes_deliver_each_callback_once(pg_url: str, receiver: Receiver) -> None:
    stores = [await PgStore.open(pg_url) for _ in range(2)]
    try:
        async with aiohttp.ClientSession() as session:
            nodes = [
                CallbackDelivery(s, session, POLICY, DeliveryCounters(), owner=f"n{i}")
                for i, s in enumerate(stores)
            ]
            for node in nodes:
                await node.start()
            expected = {(await finished(stores[0], receiver.url))[1] for _ in range(10)}
            got = [await receiver.next(20) for _ in expected]
            assert {r.headers[DELIVERY_HEADER] for r in got} == expected
            for node in nodes:
                await node.stop(10)
            assert receiver.queue.empty()  # none twice
            counts = await stores[0].callbacks.callback_counts()
            assert counts == {"delivered": 10}
    finally:
        for s in stores:
            await s.close()


@pytest.mark.parametrize("kind", ["mission", "door"])
@pytest.mark.parametrize("with_return", [True, False])
@pytest.mark.parametrize("door_due", [True, False])
@pytest.mark.parametrize("how", ["finish", "fail with a result", "fail without one"])
async def test_the_ended_row_handed_to_the_delivery_is_what_the_store_holds(
    tmp_path: Path, kind: str, with_return: bool, door_due: bool, how: str
) -> None:
    """Running hands the delivery the row its end stored, instead of a read, only when that
    end left the callback pending; then it agrees with the store on what the delivery uses."""
    store = await SqliteStore.open(tmp_path / "db")
    try:
        normalised: dict[str, Any] = {"return": {"url": "http://x/"}} if with_return else {}
        mission_id = await store.missions.insert_mission("t", {}, normalised, kind)
        claimed = await store.missions.claim(mission_id, "node", 60)
        assert claimed is not None
        result = None if how == "fail without one" else RESULT
        if how == "finish":
            assert await store.missions.finish(mission_id, "done", RESULT, "node", door_due)
            state, error = "done", ""
        else:
            assert await store.missions.fail(mission_id, "why", result, "node", door_due)
            state, error = "failed", "why"
        stored = await store.missions.get_mission(mission_id)
        assert stored is not None
        ended = _pending_row(claimed, state, result, error, door_due)
        if stored.callback_state != "pending":
            assert ended is None
        elif result is None:
            assert ended is None  # not worth mirroring: the delivery reads it
        else:
            assert ended is not None
            fields = ("id", "state", "result", "normalised", "kind", "delivery_id")
            fields += ("callback_state", "callback_attempts", "created_at")
            assert {f: getattr(ended, f) for f in fields} == {f: getattr(stored, f) for f in fields}
    finally:
        await store.close()
