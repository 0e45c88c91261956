"""The warm pool: fresh sandboxes, each handed out once, drained when the image changes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from orchestrator.sandbox.pool import SandboxPool, parse_pool_sizes
from orchestrator.sandbox.sandbox import ExecRequest, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE


def test_pool_sizes_parse() -> None:
    assert parse_pool_sizes("judge/default=4, judge/cpp=2,,") == {
        "judge/default": 4,
        "judge/cpp": 2,
    }
    assert parse_pool_sizes("registry:5000/x:tag=1") == {"registry:5000/x:tag": 1}
    assert parse_pool_sizes("") == {}


@pytest.mark.parametrize("text", ["judge/default", "=3", "judge/default=x", "judge/default=65"])
def test_pool_sizes_refuse_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="pool"):
        parse_pool_sizes(text)


async def docker_cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "docker", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def memory_fence(container_id: str) -> str:
    """The container's memory limit in bytes, as the engine reports it."""
    return await docker_cli("inspect", "-f", "{{.HostConfig.Memory}}", container_id)


async def wait_ready(pool: SandboxPool, image: str, n: int) -> None:
    """Readiness probe: poll the pool's own figures until ``n`` sandboxes are ready."""
    async with asyncio.timeout(60):
        while pool.snapshot()["images"][image]["ready"] < n:  # type: ignore[index]
            await asyncio.sleep(0.05)


@pytest.fixture
async def pool(runtime: SandboxRuntime) -> AsyncIterator[SandboxPool]:
    p = SandboxPool(runtime, {DEFAULT_IMAGE: 2}, cap=3, concurrency=2)
    p.start()
    yield p
    await p.stop()


@pytest.mark.docker
async def test_taken_sandboxes_are_fresh_and_never_shared(pool: SandboxPool) -> None:
    await wait_ready(pool, DEFAULT_IMAGE, 2)
    a = await pool.take(DEFAULT_IMAGE)
    b = await pool.take(DEFAULT_IMAGE)
    try:
        assert a.container_id != b.container_id
        assert pool.stats.hits == 2
        # Never run anything: /box is empty, and what one writes the other cannot see.
        out = await a.run(
            ExecRequest(
                argv=("sh", "-c", "ls -A | grep -vx o; echo mine > f"),
                stdout="o",
                record_stdout_bytes=99,
            )
        )
        assert out.meta.status == ""
        assert out.stdout == b""
        seen = await b.run(
            ExecRequest(argv=("sh", "-c", "ls -A | grep -vx o"), stdout="o", record_stdout_bytes=99)
        )
        assert seen.stdout == b""
    finally:
        a.close_later()
        b.close_later()
    # The pool refills behind them with new containers, never the ones handed out.
    await wait_ready(pool, DEFAULT_IMAGE, 2)
    c = await pool.take(DEFAULT_IMAGE)
    c.close_later()
    assert c.container_id not in {a.container_id, b.container_id}


@pytest.mark.docker
async def test_a_compile_sized_execute_keeps_the_pooled_fence_and_limits_stay_exact(
    pool: SandboxPool, runtime: SandboxRuntime, container_runtime: str
) -> None:
    # Pooled sandboxes are fenced for the pool's memory (512 MiB by default, what compile steps
    # ask), so such an execute needs no engine call; each execute's own limit stays the
    # supervisor's, so a smaller limit is still an exact MLE in the same sandbox.
    await wait_ready(pool, DEFAULT_IMAGE, 1)
    box = await pool.take(DEFAULT_IMAGE)
    try:
        fence = str(runtime.config.fence_bytes(pool.memory_kib))
        assert await memory_fence(box.container_id) == fence
        touch = "b = b'x' * (300 * 1024 * 1024)"
        big = await box.run(ExecRequest(argv=("python3", "-c", touch), memory_kib=524_288))
        assert big.meta.status == "", big.meta
        assert await memory_fence(box.container_id) == fence
        small = await box.run(ExecRequest(argv=("python3", "-c", touch), memory_kib=65536))
        assert small.meta.status == "MLE", small.meta
        assert small.meta.message == "memory limit exceeded (65536 KiB)"
        assert 60_000 <= small.meta.memory_kib, small.meta
        if container_runtime == "runsc":
            return  # runsc cannot change a running container's fence (fixed at creation)
        # A limit above the pool's still grows the fence (one engine call), and is honoured.
        larger = await box.run(ExecRequest(argv=("python3", "-c", touch), memory_kib=1_048_576))
        assert larger.meta.status == "", larger.meta
        grown = str(runtime.config.fence_bytes(1_048_576))
        assert await memory_fence(box.container_id) == grown
    finally:
        box.close_later()


@pytest.mark.docker
async def test_a_miss_creates_and_raises_the_target(pool: SandboxPool) -> None:
    await wait_ready(pool, DEFAULT_IMAGE, 2)
    boxes = [await pool.take(DEFAULT_IMAGE) for _ in range(3)]
    for box in boxes:
        box.close_later()
    assert (pool.stats.hits, pool.stats.misses) == (2, 1)
    assert pool.snapshot()["images"][DEFAULT_IMAGE]["target"] == 3  # type: ignore[index]
    assert len({b.container_id for b in boxes}) == 3


@pytest.mark.docker
async def test_a_dead_pooled_sandbox_is_not_handed_out(
    pool: SandboxPool, runtime: SandboxRuntime
) -> None:
    await wait_ready(pool, DEFAULT_IMAGE, 2)
    ready = list(pool._pools[DEFAULT_IMAGE].ready)
    await docker_cli("kill", ready[0].container_id)
    async with asyncio.timeout(30):  # readiness probe: the stream sees the end
        while ready[0].alive:
            await asyncio.sleep(0.05)
    box = await pool.take(DEFAULT_IMAGE)
    box.close_later()
    assert box.container_id == ready[1].container_id
    assert pool.stats.discarded == 1


@pytest.mark.docker
async def test_the_pool_drains_when_its_image_changes(runtime: SandboxRuntime) -> None:
    tag = f"judge-test-pool-{uuid.uuid4().hex[:8]}:latest"
    await docker_cli("tag", DEFAULT_IMAGE, tag)
    pool = SandboxPool(runtime, {tag: 1}, cap=1)
    try:
        pool.start()
        await wait_ready(pool, tag, 1)
        old = pool._pools[tag].ready[0]
        # A rebuild: the name now stands for another image (judge/base has the supervisor).
        base = DEFAULT_IMAGE.replace("default", "base")
        await docker_cli("tag", base, tag)
        await pool.refresh()
        assert old.closed
        box = await pool.take(tag)
        image = await docker_cli("inspect", "-f", "{{.Image}}", box.container_id)
        box.close_later()
        assert box.container_id != old.container_id
        assert image == await docker_cli("inspect", "-f", "{{.Id}}", base)
    finally:
        await pool.stop()
        await docker_cli("rmi", tag)


def test_none_is_no_pool() -> None:
    assert parse_pool_sizes("none") == {}


@pytest.mark.docker
async def test_used_sandboxes_are_removed_in_the_quiet_after_a_burst_and_the_pool_learns_it(
    runtime: SandboxRuntime, owner: str
) -> None:
    pool = SandboxPool(runtime, {DEFAULT_IMAGE: 1}, cap=4, refill_delay_s=0.05)
    pool.start()
    try:
        await wait_ready(pool, DEFAULT_IMAGE, 1)
        burst = [await pool.take(DEFAULT_IMAGE) for _ in range(3)]  # one hit, two misses
        assert runtime.activity.in_use == 3
        burst[0].close_later()
        burst[1].close_later()
        # One still in use: their removals wait (for at most JUDGE_POOL_DEFER_MAX_S, 2 s).
        assert runtime.removals_pending == 2
        assert (await runtime.adapter.count_owned(owner))[0] >= 3
        burst[2].close_later()
        assert runtime.activity.in_use == 0
        # The quiet after the burst: the three used containers go, and the pool holds one
        # more than the burst it saw (3 + 1, the cap), all new.
        await wait_ready(pool, DEFAULT_IMAGE, 4)
        async with asyncio.timeout(60):  # readiness probe: the engine's own count
            while (await runtime.adapter.count_owned(owner))[0] != 4:
                await asyncio.sleep(0.05)
        assert runtime.removals_pending == 0
        ready = {box.container_id for box in pool._pools[DEFAULT_IMAGE].ready}
        assert not ready & {box.container_id for box in burst}
    finally:
        await pool.stop()
