"""Fixtures of the service tests: a real receiver, the judge on a real port, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.frontdoors.webgme.settings import WebgmeSettings
from service.settings import Settings
from tests.conftest import DEFAULT_IMAGE
from tests.service.support import (
    ALICE,
    BOB,
    Api,
    InProcessJudge,
    ServerProcess,
    owned,
    remove_owned,
)

StartJudge = Callable[..., Awaitable[tuple[InProcessJudge, Api]]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path, owner: str) -> Settings:
    """Settings of a judge for one test: its own data dir and owner label, short backoff."""
    return Settings(
        host="127.0.0.1",
        port=0,
        tokens=(ALICE, BOB),
        data_dir=tmp_path / "data",
        default_image=DEFAULT_IMAGE,
        max_running=2,
        max_queued=20,
        shutdown_grace_s=10,
        callback_attempts=5,
        callback_initial_wait_s=0.05,
        callback_max_wait_s=0.5,
        callback_timeout_s=10,
        sandbox_owner=owner,
        pool="none",  # no warm sandboxes: the tests count the missions' own
    )


@pytest.fixture
async def start_judge(
    settings: Settings,
    session: aiohttp.ClientSession,
    owner: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[StartJudge]:
    """``await start_judge(**changes)`` starts the judge (``settings`` with ``changes``) on a
    free port. At the end every judge stops and, for Docker tests, no sandbox may be left."""
    started: list[InProcessJudge] = []

    async def start(**changes: Any) -> tuple[InProcessJudge, Api]:
        # The WebGME door's own settings (its storage quota) go to its settings model.
        webgme = {k: changes.pop(k) for k in list(changes) if k in WebgmeSettings.model_fields}
        judge = InProcessJudge(
            Settings(**{**settings.model_dump(), **changes}),
            {"executor": WebgmeSettings(**webgme)} if webgme else None,
        )
        await judge.start()
        started.append(judge)
        return judge, Api(session, judge.url)

    yield start
    for judge in reversed(started):
        await judge.stop()
    if request.node.get_closest_marker("docker"):
        leftovers = await owned(owner)
        await remove_owned(owner)
        assert leftovers == ([], []), f"sandboxes left behind: {leftovers}"


@pytest.fixture
async def servers(owner: str) -> AsyncIterator[list[ServerProcess]]:
    """Server processes a test starts; any still running at the end is killed, and no sandbox
    of the test's owner may be left."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.proc is not None and server.proc.returncode is None:
            await server.kill()
    leftovers = await owned(owner)
    await remove_owned(owner)
    assert leftovers == ([], []), f"sandboxes left behind: {leftovers}"
