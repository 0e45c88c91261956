"""The sandbox suite runs once per container runtime: runc, and gVisor's runsc when the engine
offers it (``JUDGE_RUNTIMES=runc,runsc make engine`` registers it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.sandbox import SandboxConfig, SandboxRuntime

_OFFERED: set[str] | None = None

# The modules whose claims hold under runsc too (the verdict suite). Shared-memory accounting
# (memfd, /dev/shm) reads the cgroup, which gVisor does not expose, and the seccomp profile is
# the host kernel's business, not gVisor's: those suites are runc's for now.
RUNSC_MODULES = frozenset(
    {"test_sandbox", "test_interactive", "test_limits", "test_streaming", "test_merged"}
)


async def _engine_runtimes() -> set[str]:
    global _OFFERED
    if _OFFERED is None:
        async with open_runtime(SandboxConfig(), threads=2) as rt:
            _OFFERED = set(await rt.adapter.runtimes())
    return _OFFERED


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "runc_only(why): a test of a RUNSC_MODULES module not claimed under runsc"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test runs under runc; those of RUNSC_MODULES under runsc too, unless marked
    ``runc_only``. A test not claimed under runsc is not generated for it (rather than reported
    as a skip)."""
    if "container_runtime" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        claimed = module in RUNSC_MODULES and not metafunc.definition.get_closest_marker(
            "runc_only"
        )
        runtimes = ["runc", "runsc"] if claimed else ["runc"]
        metafunc.parametrize("container_runtime", runtimes)


@pytest.fixture
async def runtime(owner: str, container_runtime: str) -> AsyncIterator[SandboxRuntime]:
    """A sandbox runtime on the local engine with ``container_runtime``; fails the test if a
    container or volume leaks, skips it when the engine does not offer that runtime (which
    fails under make test: it registers runsc)."""
    if container_runtime not in await _engine_runtimes():
        pytest.skip(
            f"the engine offers no {container_runtime} runtime "
            "(JUDGE_RUNTIMES=runc,runsc make engine registers gVisor)"
        )
    config = SandboxConfig(
        owner=owner, box_kib=64 * 1024, tmp_kib=16 * 1024, runtime=container_runtime
    )
    async with open_runtime(config, threads=16) as rt:
        yield rt
        await rt.drain()  # removals run in the background; all must be done by now
        leftovers = await rt.adapter.count_owned(owner)
        await rt.sweep()
        assert leftovers == (0, 0), f"containers/volumes left behind: {leftovers}"
