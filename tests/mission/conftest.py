"""Fixtures for mission tests: the mission's dependencies on the real engine, a file server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from orchestrator.netpolicy import make_connector
from orchestrator.run.fetch import FetchLimits
from orchestrator.run.runner import MissionDeps
from orchestrator.sandbox.sandbox import SandboxRuntime
from tests.conftest import DEFAULT_IMAGE
from tests.mission.helpers import FileServer

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def deps(runtime: SandboxRuntime) -> AsyncIterator[MissionDeps]:
    """What a mission run needs: the test's runtime and a fetch session that may reach
    localhost (the file server), as the address policy's connector requires."""
    limits = FetchLimits(block_private=False, timeout_s=10.0)
    async with aiohttp.ClientSession(connector=make_connector(limits.block_private)) as session:
        yield MissionDeps(
            runtime=runtime, session=session, default_image=DEFAULT_IMAGE, fetch_limits=limits
        )


@pytest.fixture
async def file_server(aiohttp_server: ServerFactory) -> FileServer:
    served = FileServer()
    served.server = await aiohttp_server(served.app)
    return served
