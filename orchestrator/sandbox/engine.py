"""Open and close the long-lived pieces a sandbox runtime needs: a thread pool and a Docker client.

The service owns these through its cleanup context; tests and benchmarks use ``open_runtime``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from orchestrator.sandbox.docker import DockerAdapter
from orchestrator.sandbox.sandbox import SandboxConfig, SandboxRuntime


@asynccontextmanager
async def open_runtime(
    config: SandboxConfig, *, threads: int = 32, check_engine: bool = True
) -> AsyncIterator[SandboxRuntime]:
    """Yield a ``SandboxRuntime`` on the engine ``DOCKER_HOST`` names (or the local socket).

    ``threads`` bounds the blocking Docker calls in flight; each running execute holds one thread
    for its duration. Raises ``EngineUnavailable`` when ``check_engine`` and the engine is down.
    """
    executor = ThreadPoolExecutor(threads, thread_name_prefix="docker")
    adapter: DockerAdapter | None = None
    try:
        adapter = DockerAdapter.from_env(executor)
        if check_engine:
            await adapter.version()
        runtime = SandboxRuntime(adapter, config)
        try:
            yield runtime
        finally:
            # Removals run in the background; the engine must see them all before we go.
            await runtime.drain()
    finally:
        if adapter is not None:
            adapter.close()
        executor.shutdown(wait=False, cancel_futures=True)
