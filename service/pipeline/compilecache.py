"""A compile cache shared by the front doors: compile once per tenant and content, reuse the
compiled box for the submissions of a batch and for identical submissions close in time.

Judge0's and Piston's clients send one submission per test case, each with the same source; a
door that asks here first compiles it once. An entry is keyed by ``CompileCache.key`` (the
tenant, then every part that decides what the compile produces: image, compiler argv, source,
other files), holds the compile's end (did it succeed, what it printed) and the compiled box as
a tar, which the door hands to the next sandbox to unpack (the host never unpacks it).

Bounded: entries older than ``ttl_s`` are gone, and the least recently used go first once the
boxes hold more than ``max_bytes``; a box over ``max_entry_bytes`` is not kept. Single flight:
while one caller compiles a key, ``claim`` makes the others wait for its entry (up to their
``wait_s``) instead of compiling it again. In memory, per process: a restart starts empty, and
each node of a cluster has its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CompiledBox:
    """A compile's end: ``ok`` (it succeeded), its ``output``, whether it ran out of time, and
    the sandbox's files after it as a tar (``box``; empty when it failed). ``vetted``: ``box``
    went through ``vet_archive`` (regular files and directories only, safe names), so the next
    sandbox can be handed it as ``MissionIO.archive`` instead of unpacking it with an execute."""

    ok: bool
    output: bytes | None
    box: bytes
    timed_out: bool = False
    vetted: bool = False


class CompileCache:
    """Content-addressed compiled boxes, per tenant, bounded in bytes and age."""

    def __init__(
        self,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        max_entry_bytes: int = 64 * 1024 * 1024,
        ttl_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CompiledBox]] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, asyncio.Event] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(tenant: str, *parts: bytes | str) -> str:
        """The key of a compile: a SHA-256 over the tenant and each part, each length-prefixed
        (so no two different lists of parts share a key)."""
        digest = hashlib.sha256()
        for part in (tenant, *parts):
            data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CompiledBox | None:
        """The entry of ``key`` if it is there and young enough (it becomes the most recent)."""
        found = self._entries.get(key)
        if found is None:
            return None
        stored_at, box = found
        if self._clock() - stored_at > self.ttl_s:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return box

    async def claim(self, key: str, wait_s: float) -> CompiledBox | None:
        """The entry of ``key``; when there is none, None and the caller is the one compiling
        it (it then calls ``put`` or ``abandon``). While another caller compiles ``key``, wait
        up to ``wait_s`` for its entry; if none comes, the caller compiles it too."""
        deadline = self._clock() + wait_s
        while True:
            box = self.get(key)
            if box is not None:
                self.hits += 1
                return box
            event = self._inflight.get(key)
            remaining = deadline - self._clock()
            if event is None or remaining <= 0:
                if event is None:
                    self._inflight[key] = asyncio.Event()
                self.misses += 1
                return None
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                continue

    def put(self, key: str, box: CompiledBox) -> None:
        """Keep a compile's end (unless its box is too large) and wake those waiting for it."""
        size = len(box.box) + len(box.output or b"")
        if size <= self.max_entry_bytes:
            self._drop(key)
            self._entries[key] = (self._clock(), box)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                self._drop(next(iter(self._entries)))
        self._release(key)

    def abandon(self, key: str) -> None:
        """The caller that claimed ``key`` will not compile it: the waiting callers go on."""
        self._release(key)

    def _release(self, key: str) -> None:
        event = self._inflight.pop(key, None)
        if event is not None:
            event.set()

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= len(found[1].box) + len(found[1].output or b"")
