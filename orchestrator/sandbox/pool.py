"""A warm pool of fresh sandboxes per image: started ahead of demand, each used once.

Creating a sandbox is the engine's slowest work (well over 100 ms), so ``SandboxPool`` keeps some
started per configured image and hands one out per ``take``. A pooled sandbox has never run
anything; whoever takes it owns it and removes it afterwards: it never goes back.

How many it keeps follows demand (``Demand``): the target is one more than the most sandboxes
taken between two moments the pool was full, over the last ``demand_window_s`` (at least the
configured base size, at most ``cap``). A burst of twenty executes empties a pool of two and
raises the target to 21, so the next burst finds enough ready and leaves one; a steady trickle
that the refills keep up with leaves it at the base size; the target falls back once the window
holds no such burst.

Refills run in the background with bounded concurrency and, like removals, in quiet spells
(``quiet.Activity``: no sandbox in use for ``refill_delay_s``, waiting at most
``refill_defer_max_s``): creating a container on a small machine slows the executes running
meanwhile. A pool left empty refills at once (its next taker would wait for a creation anyway).
The pool drains when the image behind its name changes (a rebuild gives a new image id): the
refill loop looks every two seconds, ``refresh`` at once. Pooled sandboxes carry the runtime's
owner label, so the sweep at start removes what a crash left behind, exactly as for every other
sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from orchestrator.errors import JudgeError
from orchestrator.sandbox.sandbox import Sandbox, SandboxRuntime

log = logging.getLogger(__name__)

# Seconds between checks of the image behind a pooled name (a rebuild drains the pool).
_RECHECK_S = 2.0
# Seconds to wait before trying again after a creation failed (engine down, image missing).
_RETRY_S = 5.0


def parse_pool_sizes(text: str) -> dict[str, int]:
    """Parse ``"judge/default=4,judge/cpp=2"`` into ``{image: size}``; ``"none"`` is ``{}``.

    Raises ``ValueError`` for an entry without ``=``, an empty image or a size that is not an
    integer from 0 to 64.
    """
    sizes: dict[str, int] = {}
    if text.strip() == "none":
        return sizes
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        image, sep, size = entry.rpartition("=")
        image = image.strip()
        if not sep or not image:
            raise ValueError(f"pool entry {entry!r} is not IMAGE=SIZE")
        try:
            n = int(size)
        except ValueError:
            raise ValueError(f"pool size {size!r} of {image!r} is not an integer") from None
        if not 0 <= n <= 64:
            raise ValueError(f"pool size {n} of {image!r} is not between 0 and 64")
        sizes[image] = n
    return sizes


@dataclass
class PoolStats:
    """Counters since the pool started."""

    hits: int = 0
    misses: int = 0
    created: int = 0
    discarded: int = 0  # drained (image changed) or found dead when taken
    failures: int = 0


class Demand:
    """Sandboxes one image needed at once lately: the most taken between two moments its pool
    was full, over the last ``window_s`` seconds (pure; the pool feeds it)."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self.since_full = 0  # taken since the pool was last full
        self._peaks: deque[tuple[float, int]] = deque(maxlen=1024)  # (when, taken that cycle)

    def taken(self) -> None:
        self.since_full += 1

    def full(self) -> None:
        """The pool holds its target again: the cycle's demand is recorded."""
        if self.since_full:
            self._peaks.append((self._clock(), self.since_full))
            self.since_full = 0

    def need(self) -> int:
        """The most taken in one cycle within the window (the current one included)."""
        horizon = self._clock() - self.window_s
        while self._peaks and self._peaks[0][0] < horizon:
            self._peaks.popleft()
        return max([self.since_full, *(n for _, n in self._peaks)])


@dataclass
class _ImagePool:
    image: str
    base: int
    target: int
    demand: Demand
    ready: deque[Sandbox] = field(default_factory=deque)
    creating: int = 0
    image_id: str | None = None
    checked_at: float = -1e9
    retry_at: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class SandboxPool:
    """Fresh sandboxes per image, taken once each; ``start`` before use, ``stop`` at the end."""

    def __init__(
        self,
        runtime: SandboxRuntime,
        sizes: Mapping[str, int],
        *,
        cap: int = 24,
        concurrency: int = 2,
        memory_kib: int = 524_288,
        refill_delay_s: float = 0.25,
        refill_defer_max_s: float = 2.0,
        demand_window_s: float = 60.0,
    ) -> None:
        """``sizes``: base size per image; ``cap``: most sandboxes one image may hold ready;
        ``concurrency``: creations in flight at once (all images); ``memory_kib``: the execute
        memory the pooled sandboxes' hard fence is sized for (a larger limit grows it);
        ``refill_delay_s``: the quiet spell (no sandbox in use) a refill waits for, at most
        ``refill_defer_max_s``; ``demand_window_s``: how long a burst keeps the target up."""
        self.runtime = runtime
        self.cap = cap
        self.memory_kib = memory_kib
        self.refill_delay_s = refill_delay_s
        self.refill_defer_max_s = refill_defer_max_s
        self.stats = PoolStats()
        self._pools = {
            image: _ImagePool(image, min(size, cap), min(size, cap), Demand(demand_window_s))
            for image, size in sizes.items()
            if size > 0
        }
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._loops: list[asyncio.Task[None]] = []
        self._creations: set[asyncio.Task[None]] = set()
        self._stopped = False

    # -- public ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start filling every configured image's pool in the background."""
        for pool in self._pools.values():
            self._loops.append(asyncio.create_task(self._refill(pool), name=f"pool {pool.image}"))

    async def stop(self) -> None:
        """Stop refilling, wait for creations under way and remove every pooled sandbox."""
        self._stopped = True
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self.runtime.activity.wake()  # creations waiting for quiet see ``_stopped``
        # A creation runs on an engine thread that cannot be interrupted: let it finish, then
        # its sandbox is removed like the others (it sees ``_stopped``).
        while self._creations:
            await asyncio.shield(asyncio.gather(*self._creations, return_exceptions=True))
        for pool in self._pools.values():
            self._drain(pool)

    async def take(self, image: str, memory_kib: int = 65536) -> Sandbox:
        """A fresh sandbox of ``image`` for the caller alone, who must close it.

        From the pool when one is ready (a hit), else created now (a miss). Either way it
        counts toward the image's demand. Raises what ``SandboxRuntime.create`` raises.
        """
        pool = self._pools.get(image)
        if pool is not None and not self._stopped:
            pool.demand.taken()
            self._retarget(pool)
            # No engine call here: the refill loop looks at the image every _RECHECK_S seconds,
            # so a rebuilt image drains its pool within that time, off the mission's path.
            while pool.ready:
                box = pool.ready.popleft()
                if box.alive:
                    self.stats.hits += 1
                    self.runtime.lend(box)
                    self._taken_from(pool)
                    return box
                self.stats.discarded += 1
                box.close_later()
            self._taken_from(pool)
        self.stats.misses += 1
        return await self.runtime.create(image, memory_kib)

    async def refresh(self) -> None:
        """Check now whether any pooled name stands for a new image, draining those that do."""
        for pool in self._pools.values():
            await self._check_image(pool, max_age_s=0.0)

    def snapshot(self) -> dict[str, object]:
        """Sizes, targets and counters, for health and metrics."""
        return {
            "images": {
                p.image: {
                    "ready": len(p.ready),
                    "creating": p.creating,
                    "target": p.target,
                    "base": p.base,
                }
                for p in self._pools.values()
            },
            "cap": self.cap,
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "created": self.stats.created,
            "discarded": self.stats.discarded,
            "failures": self.stats.failures,
            "removals_pending": self.runtime.removals_pending,
        }

    # -- background -----------------------------------------------------------------------------

    def _retarget(self, pool: _ImagePool) -> None:
        # One more than the demand seen: a burst of exactly that size leaves one ready, so its
        # last execute does not share the cores with the refill an empty pool starts at once.
        need = pool.demand.need()
        pool.target = min(self.cap, max(pool.base, need + 1 if need > pool.base else 0))

    def _taken_from(self, pool: _ImagePool) -> None:
        pool.wake.set()  # the refill loop starts what the target now asks
        if not pool.ready:
            self.runtime.activity.wake()  # refills waiting for quiet go now (``_urgent``)

    async def _refill(self, pool: _ImagePool) -> None:
        while not self._stopped:
            pool.wake.clear()
            now = time.monotonic()
            self._retarget(pool)
            await self._check_image(pool, max_age_s=_RECHECK_S)
            while len(pool.ready) > pool.target:
                pool.ready.pop().close_later()
            if now >= pool.retry_at:
                while len(pool.ready) + pool.creating < pool.target:
                    pool.creating += 1
                    task = asyncio.create_task(self._create_one(pool), name="pool create")
                    self._creations.add(task)
                    task.add_done_callback(self._creations.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RECHECK_S):
                    await pool.wake.wait()

    async def _create_one(self, pool: _ImagePool) -> None:
        asked_at = time.monotonic()
        try:
            async with self._slots:
                # In a quiet spell, unless a pool is empty (its next taker would wait for a
                # creation anyway), and at most refill_defer_max_s after the refill was asked
                # for, wherever its wait began: under load that never pauses, the slots then
                # create at the engine's pace. Only the slots' holders wait, so a deficit of
                # twenty is two waiters, not twenty woken at every lend.
                left = asked_at + self.refill_defer_max_s - time.monotonic()
                if left > 0 and not self._urgent():
                    await self.runtime.activity.quiet(
                        self.refill_delay_s, left, lambda: self._stopped or self._urgent()
                    )
                if self._stopped:
                    return
                image_id = pool.image_id
                box = await self.runtime.create(pool.image, self.memory_kib, lend=False)
        except JudgeError as e:
            self.stats.failures += 1
            pool.retry_at = time.monotonic() + _RETRY_S
            log.warning("cannot fill the pool of %s: %s", pool.image, e)
            return
        finally:
            pool.creating -= 1
            pool.wake.set()
        self.stats.created += 1
        if self._stopped or image_id != pool.image_id or len(pool.ready) >= pool.target:
            self.stats.discarded += 1
            box.close_later()
            return
        pool.ready.append(box)
        if len(pool.ready) >= pool.target:
            pool.demand.full()

    def _urgent(self) -> bool:
        """Whether a pool is empty (and not waiting out a failed creation): its next taker
        would wait for a creation anyway."""
        now = time.monotonic()
        return any(not p.ready and now >= p.retry_at for p in self._pools.values())

    async def _check_image(self, pool: _ImagePool, max_age_s: float) -> None:
        """Drain ``pool`` when its name now stands for another image than its sandboxes'."""
        now = time.monotonic()
        if now - pool.checked_at < max_age_s:
            return
        pool.checked_at = now
        try:
            image_id = await self.runtime.adapter.image_id(pool.image)
        except JudgeError:
            return  # the engine is unreachable: creations will fail and say so
        if image_id != pool.image_id:
            if pool.image_id is not None:
                log.info("image %s changed: draining its pool", pool.image)
            pool.image_id = image_id
            self._drain(pool)

    def _drain(self, pool: _ImagePool) -> None:
        while pool.ready:
            self.stats.discarded += 1
            pool.ready.popleft().close_later()


__all__ = ["Demand", "PoolStats", "SandboxPool", "parse_pool_sizes"]
