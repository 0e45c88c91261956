"""Fixtures of the fault tests: a private Docker engine they may kill (never the host's), the
judge as a process on it, a callback receiver, a PostgreSQL cluster of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.faults.harness import PrivateEngine
from tests.service.conftest import session, settings, start_judge  # noqa: F401
from tests.service.support import ServerProcess, server_env

# What the fault missions run: judge/base has sh and coreutils, and copies in ~4 s.
FAULT_IMAGE = "judge/base"


@pytest.fixture(scope="session")
def private_engine() -> Iterator[PrivateEngine]:
    """A dockerd of the suite's own, with judge/base in it; started once per session (about
    0.4 s to answer, plus ~4 s to copy the image), removed at the end."""
    engine = PrivateEngine()
    try:
        engine.start()
        engine.copy_image(FAULT_IMAGE)
        yield engine
    finally:
        engine.remove()


@pytest.fixture
def engine(private_engine: PrivateEngine) -> Iterator[PrivateEngine]:
    """The private engine, answering at the start of the test and again at its end (a test
    that kills it has it started again)."""
    if not private_engine.answers():
        private_engine.start()
    yield private_engine
    if not private_engine.answers():
        private_engine.start()


@pytest.fixture
async def servers(engine: PrivateEngine, owner: str) -> AsyncIterator[list[ServerProcess]]:
    """Server processes a test starts on the private engine; each is stopped at the end
    (killed if it will not), and then no sandbox of the test's owner may be left there."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.proc is not None and server.proc.returncode is None:
            try:
                await server.terminate(timeout=30)
            except TimeoutError:
                await server.kill()
    if not engine.answers():
        engine.start()  # a test that failed with the engine killed
    label = f"label=io.judge.owner={owner}"
    left = engine.docker("ps", "-aq", "--filter", label).split()
    if left:
        engine.docker("rm", "-f", *left)
    assert left == [], f"sandboxes left behind on the private engine: {left}"


def fault_env(engine: PrivateEngine, data_dir: Path, owner: str, **extra: str) -> dict[str, str]:
    """A server's environment on the private engine (``DOCKER_HOST``), image judge/base."""
    return {
        **server_env(data_dir, owner, JUDGE_DEFAULT_IMAGE=FAULT_IMAGE, **extra),
        "DOCKER_HOST": engine.host,
    }


async def healthz_status(client: aiohttp.ClientSession, url: str) -> int:
    """The status of the server's ``/healthz`` (as a load balancer asks)."""
    async with client.get(f"{url}/healthz") as resp:
        return resp.status


async def until(check: object, timeout: float, what: str) -> None:
    """Poll the callable ``check`` (sync or async, truthy when done) every 50 ms."""
    async with asyncio.timeout(timeout):
        while True:
            got = check()  # type: ignore[operator]
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first
