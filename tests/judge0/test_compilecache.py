"""The compile cache: per tenant, content-addressed, bounded, single flight (no engine)."""

from __future__ import annotations

import asyncio

from service.pipeline.compilecache import CompileCache, CompiledBox


def box(size: int = 10, ok: bool = True) -> CompiledBox:
    return CompiledBox(ok=ok, output=b"", box=b"x" * size)


def test_keys_are_per_tenant_and_per_part() -> None:
    k = CompileCache.key
    assert k("alice", "gcc", b"src") == k("alice", "gcc", b"src")
    assert k("alice", "gcc", b"src") != k("bob", "gcc", b"src")
    assert k("alice", "gcc", b"src") != k("alice", "gcc", b"src2")
    assert k("alice", "ab", "c") != k("alice", "a", "bc")  # parts are length-prefixed


async def test_claim_put_hit() -> None:
    cache = CompileCache()
    assert await cache.claim("k", 1.0) is None  # the caller compiles
    cache.put("k", box())
    assert await cache.claim("k", 1.0) == box()
    assert (cache.hits, cache.misses) == (1, 1)


async def test_others_wait_for_the_one_compiling() -> None:
    cache = CompileCache()
    assert await cache.claim("k", 5.0) is None
    waiters = [asyncio.create_task(cache.claim("k", 5.0)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    cache.put("k", box())
    assert await asyncio.gather(*waiters) == [box()] * 3


async def test_an_abandoned_compile_lets_one_waiter_compile() -> None:
    cache = CompileCache()
    assert await cache.claim("k", 5.0) is None
    waiters = [asyncio.create_task(cache.claim("k", 5.0)) for _ in range(2)]
    await asyncio.sleep(0)
    cache.abandon("k")
    first = await asyncio.wait_for(asyncio.shield(waiters[0]), 1.0)
    assert first is None  # this one compiles now; the other waits for it
    assert not waiters[1].done()
    cache.put("k", box())
    assert await waiters[1] == box()


async def test_a_waiter_gives_up_after_its_wait() -> None:
    cache = CompileCache()
    assert await cache.claim("k", 5.0) is None
    assert await cache.claim("k", 0.05) is None


def test_bounded_by_bytes_lru_and_age() -> None:
    now = [0.0]
    cache = CompileCache(max_bytes=25, max_entry_bytes=20, ttl_s=10, clock=lambda: now[0])
    cache.put("a", box(10))
    cache.put("b", box(10))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", box(10))  # over 25 bytes: b, the least recently used, goes
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.size_bytes == 20
    cache.put("big", box(21))  # over the entry cap: not kept
    assert cache.get("big") is None
    now[0] = 11.0
    assert cache.get("a") is None
    assert len(cache) == 1
