"""One repository suite, run against both engines (SQLite and PostgreSQL).

Each engine's class only says how to open a store; every test is in ``RepositoryTests``, so a
behaviour one engine has and the other lacks fails here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import service.store.sqlite as sqlite_store
from service.pipeline.workqueue import COUNT_MAX_AGE_S, SharedQueue
from service.store import PgStore, SqliteStore, Storage, hash_token
from service.store.postgres import MIGRATIONS

MISSION: dict[str, Any] = {"tasks": {"task": []}}
NORMALISED: dict[str, Any] = {"return": {"url": "http://127.0.0.1:9/"}}
RESULT: dict[str, Any] = {"prepare": {}, "task": [], "final": {}}


async def queue(store: Storage, n: int = 1, kind: str = "mission") -> list[int]:
    return [
        await store.missions.insert_mission("t" * 64, MISSION, NORMALISED, kind) for _ in range(n)
    ]


class RepositoryTests:
    """Tests every engine passes; a subclass provides the ``store`` fixture."""

    async def test_mission_round_trip(self, store: Storage) -> None:
        [mission_id] = await queue(store)
        row = await store.missions.get_mission(mission_id)
        assert row is not None
        assert (row.state, row.mission, row.normalised, row.runs) == (
            "queued",
            MISSION,
            NORMALISED,
            0,
        )
        assert await store.missions.get_mission(mission_id + 1000) is None
        assert await store.missions.queued_count() == 1
        assert await store.missions.counts() == {"queued": 1}

    async def test_a_requeue_counts_a_run_only_when_it_started(self, store: Storage) -> None:
        [mission_id] = await queue(store)
        missions = store.missions
        claimed = await missions.claim_next("node", 60)
        assert claimed is not None
        assert claimed.runs == 1
        assert not await missions.requeue(mission_id, "other-node", started=False)
        assert await missions.requeue(mission_id, "node", started=False)  # never started
        row = await missions.get_mission(mission_id)
        assert row is not None
        assert (row.state, row.runs) == ("queued", 0)
        assert await missions.claim_next("node", 60) is not None
        assert await missions.requeue(mission_id, "node")  # it started: interrupted
        row = await missions.get_mission(mission_id)
        assert row is not None
        assert (row.state, row.runs) == ("queued", 1)

    async def test_claim_next_takes_only_missions_whose_image_the_node_has(
        self, store: Storage
    ) -> None:
        """Nodes sharing a queue may have different images: a node claims a mission only when
        it has the mission's image (a mission naming none runs in the default image)."""
        ids: dict[str | None, int] = {}
        for image in ("judge/java", "judge/python3:latest", None):
            normalised = {**NORMALISED, **({"image": image} if image else {})}
            ids[image] = await store.missions.insert_mission("t" * 64, MISSION, normalised)
        python_node = {"judge/python3", "judge/default"}
        got = []
        while (row := await store.missions.claim_next("py-node", 60, python_node)) is not None:
            got.append(row.id)
        assert got == [ids["judge/python3:latest"], ids[None]]
        assert await store.missions.claim_next("bare-node", 60, set()) is None
        # A lease that ends at once: the mission is due again, but only for a node with Java.
        java = await store.missions.claim_next("java-node", 0, {"judge/java"})
        assert java is not None
        assert java.id == ids["judge/java"]
        assert await store.missions.claim_next("py-node", 60, python_node) is None
        again = await store.missions.claim_next("other-java-node", 60, {"judge/java", "x"})
        assert again is not None
        assert (again.id, again.runs) == (ids["judge/java"], 2)

    async def test_a_tokens_missions_are_listed_newest_first_and_paged(
        self, store: Storage
    ) -> None:
        alice, bob = "a" * 64, "b" * 64
        mine = [await store.missions.insert_mission(alice, MISSION, NORMALISED) for _ in range(3)]
        await store.missions.insert_mission(bob, MISSION, NORMALISED)
        door = await store.missions.insert_mission(alice, MISSION, NORMALISED, "judge0")
        listed = await store.missions.list_missions(alice, 10)
        assert [r.id for r in listed] == [door, *reversed(mine)]
        assert {r.token_hash for r in listed} == {alice}
        assert listed[0].kind == "judge0"
        assert listed[1].normalised == NORMALISED
        page = await store.missions.list_missions(alice, 2, offset=1)
        assert [r.id for r in page] == [mine[2], mine[1]]
        assert await store.missions.list_missions(alice, 10, offset=4) == []
        assert await store.missions.list_missions("c" * 64, 10) == []
        assert await store.missions.count_missions(alice) == 4
        assert await store.missions.count_missions("c" * 64) == 0

    async def test_ids_are_distinct_and_increasing(self, store: Storage) -> None:
        ids = await queue(store, 5)
        assert ids == sorted(set(ids))

    async def test_claim_holds_a_lease_that_only_its_owner_uses(self, store: Storage) -> None:
        [mission_id] = await queue(store)
        row = await store.missions.claim(mission_id, "node-a", 60)
        assert row is not None
        assert row.state == "running"
        assert row.runs == 1
        assert await store.missions.claim(mission_id, "node-b", 60) is None
        assert await store.missions.renew_lease(mission_id, "node-b", 60) is None
        assert await store.missions.renew_lease(mission_id, "node-a", 60) is False
        assert not await store.missions.finish(mission_id, "done", RESULT, "node-b")
        assert await store.missions.finish(mission_id, "done", RESULT, "node-a")
        done = await store.missions.get_mission(mission_id)
        assert done is not None
        assert (done.state, done.result, done.callback_state) == ("done", RESULT, "pending")

    async def test_claim_next_takes_the_oldest_queued(self, store: Storage) -> None:
        ids = await queue(store, 3)
        first = await store.missions.claim_next("node-a", 60)
        assert first is not None
        assert first.id == ids[0]
        second = await store.missions.claim_next("node-b", 60)
        assert second is not None
        assert second.id == ids[1]

    async def test_concurrent_claimers_never_share_a_mission(self, store: Storage) -> None:
        ids = await queue(store, 20)

        async def claimer(owner: str) -> list[int]:
            got = []
            while (row := await store.missions.claim_next(owner, 60)) is not None:
                got.append(row.id)
            return got

        claimed = await asyncio.gather(*(claimer(f"node-{n}") for n in range(4)))
        flat = [i for got in claimed for i in got]
        assert sorted(flat) == ids  # each exactly once

    async def test_an_expired_lease_is_claimed_again_keeping_id_and_delivery(
        self, store: Storage
    ) -> None:
        [mission_id] = await queue(store)
        dead = await store.missions.claim_next("dead-node", 0)  # a lease that ends at once
        assert dead is not None
        again = await store.missions.claim_next("live-node", 60)
        assert again is not None
        assert (again.id, again.runs, again.delivery_id) == (mission_id, 2, dead.delivery_id)
        # The dead node, were it to come back, holds nothing: its result is not stored.
        assert await store.missions.renew_lease(mission_id, "dead-node", 60) is None
        assert not await store.missions.finish(mission_id, "done", RESULT, "dead-node")
        assert await store.missions.finish(mission_id, "done", RESULT, "live-node")

    async def test_a_live_lease_is_not_taken(self, store: Storage) -> None:
        await queue(store)
        assert await store.missions.claim_next("node-a", 60) is not None
        assert await store.missions.claim_next("node-b", 60) is None

    async def test_cancel_asked_of_a_running_mission_reaches_its_owner(
        self, store: Storage
    ) -> None:
        [mission_id] = await queue(store)
        assert not await store.missions.request_cancel(mission_id)  # queued: not this way
        await store.missions.claim(mission_id, "node-a", 60)
        assert await store.missions.request_cancel(mission_id)
        assert await store.missions.renew_lease(mission_id, "node-a", 60) is True

    async def test_cancel_queued(self, store: Storage) -> None:
        [mission_id] = await queue(store)
        assert await store.missions.cancel_queued(mission_id, RESULT)
        assert not await store.missions.cancel_queued(mission_id, RESULT)
        row = await store.missions.get_mission(mission_id)
        assert row is not None
        assert (row.state, row.callback_state) == ("cancelled", "pending")

    async def test_a_failed_mission_with_a_result_is_called_back(self, store: Storage) -> None:
        with_result, without = await queue(store, 2)
        await store.missions.claim(with_result, "node-a", 60)
        assert not await store.missions.fail(with_result, "boom", RESULT, "node-b")
        assert await store.missions.fail(with_result, "boom", RESULT, "node-a")
        assert await store.missions.fail(without, "boom")
        a = await store.missions.get_mission(with_result)
        b = await store.missions.get_mission(without)
        assert a is not None
        assert (a.state, a.error, a.result, a.callback_state) == (
            "failed",
            "boom",
            RESULT,
            "pending",
        )
        assert b is not None
        assert (b.state, b.callback_state) == ("failed", "failed")

    async def test_front_door_missions_have_no_callback(self, store: Storage) -> None:
        [mission_id] = await queue(store, kind="executor")
        await store.missions.claim(mission_id, "node-a", 60)
        await store.missions.finish(mission_id, "done", RESULT, "node-a")
        row = await store.missions.get_mission(mission_id)
        assert row is not None
        assert row.callback_state == "waiting"

    async def test_requeue_at_start_takes_back_only_the_node_own(self, store: Storage) -> None:
        mine, theirs, waiting = await queue(store, 3)
        await store.missions.claim(mine, "node-a", 60)
        await store.missions.claim(theirs, "node-b", 60)
        assert await store.missions.requeue_unfinished("node-a") == [mine, waiting]
        row = await store.missions.get_mission(theirs)
        assert row is not None
        assert row.state == "running"
        assert await store.missions.requeue_unfinished() == [mine, theirs, waiting]

    async def test_callbacks_are_claimed_by_one_node_at_a_time(self, store: Storage) -> None:
        ids = await queue(store, 3)
        for mission_id in ids:
            await store.missions.cancel_queued(mission_id, RESULT)
        assert await store.callbacks.pending_callbacks() == ids
        a = await store.callbacks.claim_callbacks("node-a", 60, 2)
        b = await store.callbacks.claim_callbacks("node-b", 60, 10)
        assert a == ids[:2]
        assert b == ids[2:]
        assert await store.callbacks.claim_callbacks("node-c", 60, 10) == []
        await store.callbacks.release_callback(ids[0], "node-b")  # not its own: no effect
        assert await store.callbacks.claim_callbacks("node-c", 60, 10) == []
        await store.callbacks.release_callback(ids[0], "node-a")
        assert await store.callbacks.claim_callbacks("node-c", 60, 10) == [ids[0]]
        await store.callbacks.set_callback(ids[0], "delivered", 1, "")
        assert await store.callbacks.callback_counts() == {"pending": 2, "delivered": 1}

    async def test_an_expired_callback_lease_is_claimed_again(self, store: Storage) -> None:
        [mission_id] = await queue(store)
        await store.missions.cancel_queued(mission_id, RESULT)
        assert await store.callbacks.claim_callbacks("dead-node", 0, 10) == [mission_id]
        assert await store.callbacks.claim_callbacks("live-node", 60, 10) == [mission_id]

    async def test_tokens(self, store: Storage) -> None:
        token = await store.tokens.add_token("alice")
        assert await store.tokens.token_active(hash_token(token))
        with pytest.raises(ValueError, match="exists"):
            await store.tokens.add_token("alice")
        with pytest.raises(ValueError, match="name"):
            await store.tokens.add_token("  ")
        [listed] = await store.tokens.list_tokens()
        assert listed["name"] == "alice"
        assert listed["revoked_at"] is None
        assert await store.tokens.revoke_token("alice")
        assert not await store.tokens.revoke_token("alice")
        assert not await store.tokens.token_active(hash_token(token))

    async def test_a_pinned_mission_is_claimed_only_by_its_node_while_pinned(
        self, store: Storage
    ) -> None:
        pinned = await store.missions.insert_pinned_mission(
            "tok", MISSION, NORMALISED, "exec", "node-a", 60
        )
        assert await store.missions.claim_next("node-b", 60) is None
        await store.missions.renew_pins("node-a", 60)
        row = await store.missions.claim_next("node-a", 60)
        assert row is not None
        assert row.id == pinned
        # A pin its node stopped renewing (the node died) lapses: another node may claim it.
        lapsed = await store.missions.insert_pinned_mission(
            "tok", MISSION, NORMALISED, "exec", "node-a", 0
        )
        row = await store.missions.claim_next("node-b", 60)
        assert row is not None
        assert row.id == lapsed

    async def test_the_store_answers_a_ping(self, store: Storage) -> None:
        assert await store.ping()

    async def test_concurrent_submissions_share_transactions_in_order(self, store: Storage) -> None:
        intake = store._intake  # type: ignore[attr-defined]  # group commit, both engines
        groups: list[int] = []
        write = intake._write

        async def counted(batch: list[Any]) -> list[int]:
            groups.append(len(batch))
            return list(await write(batch))

        intake._write = counted
        missions = [{"return": {"url": f"http://127.0.0.1:9/{i}"}} for i in range(40)]
        ids = await asyncio.gather(
            *(store.missions.insert_mission("t" * 64, m, m) for m in missions)
        )
        assert sorted(ids) == ids
        assert len(set(ids)) == 40
        assert sum(groups) == 40
        assert len(groups) < 40
        for mission_id, m in zip(ids, missions, strict=True):
            row = await store.missions.get_mission(mission_id)
            assert row is not None
            assert row.mission == m
            assert row.state == "queued"
        # The next one, alone, comes after them.
        [after] = await queue(store)
        assert after > ids[-1]

    async def test_a_group_that_fails_stores_none_of_it(self, store: Storage) -> None:
        unstorable: dict[str, Any] = {"x": {1, 2}}  # not JSON: fails inside the transaction
        got = await asyncio.gather(
            *(store.missions.insert_mission("t" * 64, MISSION, NORMALISED) for _ in range(4)),
            store.missions.insert_mission("t" * 64, unstorable, NORMALISED),
            return_exceptions=True,
        )
        assert all(isinstance(g, TypeError) for g in got), got
        assert await store.missions.counts() == {}
        [mission_id] = await queue(store)  # the store goes on
        assert await store.missions.get_mission(mission_id) is not None


class TestSqlite(RepositoryTests):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Storage]:
        store = await SqliteStore.open(tmp_path / "judge.sqlite3")
        yield store
        await store.close()

    async def test_counts_answer_while_the_writer_is_busy(self, tmp_path: Path) -> None:
        """/healthz and /metrics count missions beside the writer: a long write (a large result
        being encoded and stored) does not hold them up."""
        store = await SqliteStore.open(tmp_path / "judge.sqlite3")
        release = threading.Event()
        try:
            await store.missions.insert_mission("t" * 64, MISSION, NORMALISED)
            # The store's one writer thread is held until the counts have answered.
            held = asyncio.ensure_future(store._call(lambda _db: release.wait(30)))
            assert await asyncio.wait_for(store.missions.counts(), 10) == {"queued": 1}
            assert not held.done()
        finally:
            release.set()
            await store.close()

    async def test_ping_asks_no_thread_right_after_a_statement_succeeded(
        self, tmp_path: Path
    ) -> None:
        """/healthz's database check: a statement that just succeeded is its answer; only after
        ``ANSWERED_RECENTLY_S`` without one does it read a row (on the reader's thread)."""
        store = await SqliteStore.open(tmp_path / "judge.sqlite3")
        release = threading.Event()
        try:
            await store.missions.insert_mission("t" * 64, MISSION, NORMALISED)
            # Both of the store's threads are held: a ping that needed one could not answer.
            assert store._reader_executor is not None
            loop = asyncio.get_running_loop()
            held = [
                asyncio.ensure_future(store._call(lambda _db: release.wait(30))),
                loop.run_in_executor(store._reader_executor, release.wait, 30),
            ]
            assert await asyncio.wait_for(store.ping(), 10)
            store._answered_at -= sqlite_store.ANSWERED_RECENTLY_S  # as if long ago
            asking = asyncio.ensure_future(store.ping())
            await asyncio.sleep(0)
            assert not asking.done()  # it waits for the reader's thread
            release.set()
            assert await asyncio.wait_for(asking, 10)
            await asyncio.gather(*held)
        finally:
            release.set()
            await store.close()

    async def test_only_claims_commit_without_their_own_sync(self, tmp_path: Path) -> None:
        """An accepted mission and a result are synced at their commit (they survive a power
        cut); a claim is not (losing one only leaves the mission queued): its commit runs under
        ``synchronous=NORMAL``, and the connection is back to FULL right after."""
        store = await SqliteStore.open(tmp_path / "judge.sqlite3")
        said: list[str] = []
        try:
            store._db._conn.set_trace_callback(said.append)
            [mission_id] = await queue(store)
            insert = list(said)
            said.clear()
            row = await store.missions.claim(mission_id, "node", 30.0)
            assert row is not None
            claim = list(said)
            said.clear()
            assert await store.missions.finish(mission_id, "done", {"prepare": {}})
            finish = list(said)
            store._db._conn.set_trace_callback(None)
            level = store._db._conn.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            await store.close()
        # A group of submissions is one INSERT, a transaction by itself (autocommit), synced.
        assert len(insert) == 1
        assert insert[0].startswith("INSERT INTO missions")
        assert any(s.startswith("UPDATE missions") for s in finish)  # (autocommit: one statement)
        assert not any("synchronous" in s for s in insert + finish)
        assert claim[0] == "PRAGMA synchronous=NORMAL"
        assert claim[-1] == "PRAGMA synchronous=FULL"
        assert "COMMIT" in claim
        assert level == 2  # FULL


@pytest.mark.postgres
class TestPostgres(RepositoryTests):
    @pytest.fixture
    async def store(self, pg_url: str) -> AsyncIterator[Storage]:
        store = await PgStore.open(pg_url)
        yield store
        await store.close()

    async def test_schema_is_versioned_and_migrating_again_changes_nothing(
        self, pg_url: str, store: Storage
    ) -> None:
        again = await PgStore.open(pg_url)  # a second node starting on the same database
        await again.close()
        import asyncpg

        conn = await asyncpg.connect(pg_url)
        try:
            versions = [r["version"] for r in await conn.fetch("SELECT version FROM judge_schema")]
        finally:
            await conn.close()
        # Each migration once, in order, however many nodes started.
        assert versions == list(range(1, len(MIGRATIONS) + 1))

    async def test_notify_reaches_another_node(self, pg_url: str, store: Storage) -> None:
        other = await PgStore.open(pg_url)
        try:
            heard: asyncio.Queue[str] = asyncio.Queue()
            await other.subscribe("judge_missions", heard.put_nowait)
            [mission_id] = await queue(store)
            assert await asyncio.wait_for(heard.get(), 10) == str(mission_id)
        finally:
            await other.close()

    async def test_every_mission_of_a_group_is_notified(self, pg_url: str, store: Storage) -> None:
        other = await PgStore.open(pg_url)
        try:
            heard: asyncio.Queue[str] = asyncio.Queue()
            await other.subscribe("judge_missions", heard.put_nowait)
            ids = await asyncio.gather(*(queue(store) for _ in range(20)))
            got = [await asyncio.wait_for(heard.get(), 10) for _ in range(20)]
            assert sorted(got) == sorted(str(i) for [i] in ids)
        finally:
            await other.close()

    async def test_the_shared_queue_count_sees_other_nodes(self, store: Storage) -> None:
        # Admission reads the count at most once per COUNT_MAX_AGE_S and adds this node's own
        # submissions meanwhile; another node's show at the next count.
        here = SharedQueue(store, owner="a", lease_s=5, poll_s=1)
        await queue(store, 2)
        assert await here.refresh_depth() == 2
        here.push(99)  # this node stored one: counted at once
        await queue(store, 3)  # another node's
        assert await here.refresh_depth() == 3
        here._counted_at -= COUNT_MAX_AGE_S  # a second later
        assert await here.refresh_depth() == 5
