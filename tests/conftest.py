"""Shared fixtures. Sandbox tests run on the real Docker engine (marker ``docker``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.sandbox import SandboxConfig, SandboxRuntime
from tests import pgcluster
from tests.service.support import Receiver

DEFAULT_IMAGE = os.environ.get("JUDGE_TEST_IMAGE", "judge/default")

# `make test` installs everything a test needs, so there a skip means something is missing and
# a claim went untested: it fails instead (JUDGE_TEST_NO_SKIPS=1, set by the Makefile).
NO_SKIPS = os.environ.get("JUDGE_TEST_NO_SKIPS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``JUDGE_TEST_NO_SKIPS=1`` a skipped test is reported failed, with its reason."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under make test (JUDGE_TEST_NO_SKIPS=1): {reason}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A callback receiver on a free local port (see ``Receiver``)."""
    rx = Receiver()
    await rx.start()
    yield rx
    await rx.stop()


@pytest.fixture
def owner() -> str:
    """A label value of this test's own, so sweeps and leak checks see only its sandboxes."""
    return f"judge-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def runtime(owner: str) -> AsyncIterator[SandboxRuntime]:
    """A sandbox runtime on the local engine; fails the test if a container or volume leaks."""
    config = SandboxConfig(owner=owner, box_kib=64 * 1024, tmp_kib=16 * 1024)
    async with open_runtime(config, threads=16) as rt:
        yield rt
        await rt.drain()  # removals run in the background; all must be done by now
        leftovers = await rt.adapter.count_owned(owner)
        await rt.sweep()
        assert leftovers == (0, 0), f"containers/volumes left behind: {leftovers}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for the whole run (a throwaway cluster unless
    ``JUDGE_TEST_DATABASE_URL`` names one); tests take a database of their own from it."""
    with pgcluster.cluster() as url:
        yield url


@pytest.fixture
async def pg_url(pg_server: str) -> str:
    """The URL of an empty database of this test's own."""
    return await pgcluster.fresh_database(pg_server)
