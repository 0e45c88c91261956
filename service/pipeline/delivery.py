"""Callback delivery: one job, apart from running missions (as arq keeps delivering a job's
result apart from running it).

A finished mission's callback is *due* in the database (``callback_state = 'pending'``). On
SQLite (one node) this node delivers what it finished and, at start, whatever was pending. On
PostgreSQL every node claims due callbacks in batches under a lease it renews while retrying, so
each callback is sent by one node at a time and a dead node's retries are resumed by another.
Delivery is at least once, always with the mission's delivery id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp

from orchestrator.mission import result as result_doc
from service.pipeline.callbacks import Callback, CallbackPolicy, Delivery, callback_body, deliver
from service.pipeline.inline import callback_small, count_files
from service.pipeline.tracked import TrackedTasks
from service.store import CALLBACKS_CHANNEL, MISSION_KIND, MissionRow, Store

DoorCallback = Callable[[MissionRow, dict[str, Any] | None], Callback | None]
"""A front door's ``callback``: its body for one of its missions, or None."""

T = TypeVar("T")


class HeavyWork(Protocol):
    """Where work that holds the GIL for long runs: another process (``Offload``)."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (module-level, picklable) in another process."""
        ...


log = logging.getLogger(__name__)

CLAIM_BATCH = 64
LARGE_CALLBACK_ENTRIES = 256
"""Executes and files beyond which a callback body is encoded in the offload pool: ~0.8 ms of
process hop, against ~0.2 s of GIL-holding encoding for a 10,000-execute mission on a thread."""


def _entries(normalised: Mapping[str, Any]) -> int:
    """The executes and files a mission's result lists (from its echo, not parsed again)."""
    return result_doc.count_in_echo(normalised) + count_files(normalised)


@dataclass
class DeliveryCounters:
    """Counters of this process's deliveries (exposed on /metrics)."""

    callback_attempts: int = 0
    callback_failures: int = 0
    callbacks_delivered: int = 0
    # Submission to delivered callback.
    turnaround_seconds_sum: float = 0.0
    turnaround_count: int = 0


class CallbackDelivery:
    """Delivers due callbacks; ``start`` resumes or starts claiming, ``stop`` ends it all."""

    def __init__(
        self,
        store: Store,
        session: aiohttp.ClientSession,
        policy: CallbackPolicy,
        counters: DeliveryCounters,
        *,
        concurrency: int = 32,
        owner: str = "judge",
        lease_s: float = 20.0,
        poll_s: float = 2.0,
        door_callback: Callable[[str], DoorCallback | None] = lambda kind: None,
        heavy: HeavyWork | None = None,
    ) -> None:
        """``heavy``: runs a module-level function of picklable arguments in another process
        (the offload pool): a large mission's callback body is encoded there, not on a thread of
        this one, where its GIL-holding work would slow the event loop (None: always a thread)."""
        self._store = store
        self._heavy = heavy
        self._door_callback = door_callback
        self._session = session
        self._policy = policy
        self.counters = counters
        self._limiter = asyncio.Semaphore(concurrency)
        self._clustered = store.clustered
        self._owner = owner
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._due = asyncio.Event()  # a hint: the database stays the truth
        self._delivering: set[int] = set()
        self._tasks = TrackedTasks()
        self._claimer: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def delivering(self) -> frozenset[int]:
        """Missions whose callback this node is sending or retrying now."""
        return frozenset(self._delivering)

    async def start(self) -> int:
        """SQLite: deliver every callback left pending; returns how many. PostgreSQL: claim
        due callbacks from now on (a NOTIFY wakes the claimer; it also polls); returns 0."""
        if self._clustered:
            await self._store.subscribe(CALLBACKS_CHANNEL, lambda _: self._due.set())
            self._claimer = asyncio.create_task(self._claim_loop(), name="callback-claimer")
            return 0
        pending = await self._store.callbacks.pending_callbacks()
        for mission_id in pending:
            self._spawn(mission_id)
        return len(pending)

    def due(self, mission_id: int, ended: MissionRow | None = None) -> None:
        """A mission this node finished has a callback due (already stored as pending).
        ``ended``: its row as that end stored it, when the caller has it (one read of the
        store fewer before the first attempt)."""
        if self._clustered:
            self._due.set()  # claimed like any other node's callback, by one node only
        else:
            self._spawn(mission_id, ended)

    async def stop(self, linger_s: float) -> None:
        """Give deliveries in flight up to ``linger_s`` (most are one quick POST), then cancel
        the rest: they stay pending and resume at the next start (or on another node)."""
        self._stopping = True
        await self._tasks.drain(linger_s)
        if self._claimer is not None:
            self._claimer.cancel()
            await asyncio.gather(self._claimer, return_exceptions=True)
            self._claimer = None

    def _spawn(self, mission_id: int, ended: MissionRow | None = None) -> None:
        if mission_id in self._delivering or self._stopping:
            return
        self._delivering.add(mission_id)
        task = self._tasks.start(self._deliver(mission_id, ended), f"callback-{mission_id}")
        task.add_done_callback(lambda _: self._delivering.discard(mission_id))

    async def _claim_loop(self) -> None:
        """Claim due callbacks (any node's, a dead node's included) and deliver them, keeping
        the leases of those still being retried."""
        while True:
            self._due.clear()
            try:
                if self._delivering:
                    await self._store.callbacks.renew_callbacks(
                        sorted(self._delivering),
                        self._owner,
                        self._lease_s,
                    )
                if not self._stopping:
                    claimed = await self._store.callbacks.claim_callbacks(
                        self._owner, self._lease_s, CLAIM_BATCH
                    )
                    for mission_id in claimed:
                        self._spawn(mission_id)
            except Exception:
                log.exception("cannot claim callbacks; retrying")
            try:
                async with asyncio.timeout(min(self._poll_s, self._lease_s / 3)):
                    await self._due.wait()
            except TimeoutError:
                pass

    async def _deliver(self, mission_id: int, ended: MissionRow | None = None) -> None:
        row = ended or await self._store.missions.get_mission(mission_id)
        if row is None or row.callback_state != "pending":
            return
        delivery = await self._delivery_of(row)
        if delivery is None:
            return
        c = self.counters

        async def failed_attempt(n: int, error: str) -> None:
            c.callback_attempts += 1
            log.info("mission %d: callback attempt %d failed: %s", mission_id, n, error)
            await self._store.callbacks.set_callback(mission_id, "pending", n, error)

        outcome = await deliver(
            self._session,
            delivery,
            self._policy,
            done_before=row.callback_attempts,
            limiter=self._limiter,
            on_attempt=failed_attempt,
        )
        if outcome.delivered:
            c.callback_attempts += 1
            c.callbacks_delivered += 1
            c.turnaround_seconds_sum += max(0.0, time.time() - row.created_at)
            c.turnaround_count += 1
            log.info("mission %d: callback delivered (attempt %d)", mission_id, outcome.attempts)
        else:
            c.callback_failures += 1
        await self._store.callbacks.set_callback(
            mission_id,
            "delivered" if outcome.delivered else "failed",
            outcome.attempts,
            outcome.error,
        )
        if self._clustered:
            await self._store.callbacks.release_callback(mission_id, self._owner)

    async def _encode(
        self, args: tuple[int, Mapping[str, Any], Mapping[str, Any], str], *, small: bool
    ) -> tuple[bytes, str]:
        """``callback_body(*args)``: on the loop when ``small`` (``inline.callback_small``), in
        the offload pool for a large mission (its executes and files), else on a thread."""
        if small:
            return callback_body(*args)  # bounded, and cheaper than a hop to a thread
        if self._heavy is not None and _entries(args[1]) > LARGE_CALLBACK_ENTRIES:
            try:
                encoded: tuple[bytes, str] = await self._heavy.run(callback_body, *args)
                return encoded
            except BrokenProcessPool:
                log.warning("mission %d: the offload pool broke; encoding on a thread", args[0])
        return await asyncio.to_thread(callback_body, *args)

    async def _delivery_of(self, row: MissionRow) -> Delivery | None:
        """What to send for a mission whose callback is pending: the mission API's body from
        its ``return``, a front door's from the door; None when there is nothing to send."""
        if row.kind == MISSION_KIND:
            if row.result is None or "return" not in row.normalised:
                return None  # polled only; never 'pending', but be sure
            ret = row.normalised["return"]
            args = (row.id, row.normalised, row.result, ret.get("format", "form"))
            body, ctype = await self._encode(args, small=callback_small(row, row.result))
            return Delivery(ret["url"], body, ctype, row.delivery_id)
        build = self._door_callback(row.kind)
        callback = None if build is None else await asyncio.to_thread(build, row, row.result)
        if callback is None:
            # Its door is gone (not served by this build) or changed its mind: nothing to send.
            await self._store.callbacks.set_callback(
                row.id, "failed", row.callback_attempts, "its front door has no callback for it"
            )
            if self._clustered:
                await self._store.callbacks.release_callback(row.id, self._owner)
            return None
        return Delivery(
            callback.url,
            callback.body,
            callback.content_type,
            row.delivery_id,
            callback.method,
            callback.headers,
        )
