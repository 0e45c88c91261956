"""Fixtures of the Judge0 door's tests: a judge on a real port and Judge0's own SDK on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
import judge0
import pytest

from service.frontdoors.judge0 import JUDGE0_DOOR, Judge0Door
from service.store import Store
from service.store.protocols import DoorSqlRepo
from tests.service.conftest import session, settings, start_judge  # noqa: F401
from tests.service.support import ALICE, BOB, InProcessJudge

T = TypeVar("T")
AUTH = {"X-Auth-Token": ALICE}
BOB_AUTH = {"X-Auth-Token": BOB}


class Judge0Http:
    """Raw HTTP to the door: (status, parsed JSON or text or None, headers)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.session = http
        self.base = base

    async def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = AUTH, **kw: Any
    ) -> tuple[int, Any, Any]:
        async with self.session.request(method, self.base + path, headers=headers, **kw) as resp:
            raw = await resp.read()
            body: Any = None
            if raw:
                body = (
                    await resp.json() if resp.content_type == "application/json" else raw.decode()
                )
            return resp.status, body, resp.headers

    async def wait_done(self, token: str, timeout: float = 60.0, **query: str) -> dict[str, Any]:
        """Poll a submission until its status leaves 1 and 2 (as the SDK does)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status, body, _ = await self.call(
                "GET", f"/submissions/{token}", params={"fields": "*", **query}
            )
            assert status == 200, body
            if body["status"]["id"] not in (1, 2):
                return dict(body)
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.05)


@pytest.fixture
async def j0(start_judge: Any, session: aiohttp.ClientSession) -> tuple[InProcessJudge, Judge0Http]:  # noqa: F811
    judge, _ = await start_judge(max_queued=60)
    return judge, Judge0Http(session, judge.url + "/judge0")


async def sdk(fn: Callable[[], T]) -> T:
    """Run Judge0's synchronous SDK off the loop the judge serves on."""
    return await asyncio.to_thread(fn)


def client(judge: InProcessJudge, token: str = ALICE) -> judge0.Client:
    return judge0.Client(judge.url + "/judge0", headers={"X-Auth-Token": token})


def cache(judge: InProcessJudge) -> Any:
    """The compile cache of the judge's Judge0 door."""
    return judge.app[JUDGE0_DOOR].cache


async def judge0_sql(store: Store) -> DoorSqlRepo:
    """The store's door statements with the Judge0 door's tables made (as the app makes them)."""
    assert Judge0Door.migrations is not None
    folder = Judge0Door.migrations / ("postgresql" if store.clustered else "sqlite")
    scripts = [p.read_text() for p in sorted(folder.glob("[0-9][0-9][0-9]_*.sql"))]
    await store.sql.migrate_door(Judge0Door.name, scripts)
    return store.sql


__all__ = ["AUTH", "BOB_AUTH", "Judge0Http", "cache", "client", "j0", "judge0_sql", "sdk"]
