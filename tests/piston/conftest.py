"""Fixtures of the Piston door's tests against a real judge: the service tests' own (a judge
on a real port, a client session) and ``piston``, a judge with the door's settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.service.conftest import (  # noqa: F401
    StartJudge,
    servers,
    session,
    settings,
    start_judge,
)
from tests.service.support import ALICE

AUTH = {"Authorization": f"Bearer {ALICE}"}

Execute = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]


@pytest.fixture
def piston_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``piston_env(anonymous=True, ...)``: ``JUDGE_PISTON_*`` for the judge started next."""

    def put(**values: Any) -> None:
        for key, value in values.items():
            monkeypatch.setenv(
                f"JUDGE_PISTON_{key.upper()}",
                str(value).lower() if isinstance(value, bool) else str(value),
            )

    return put


@pytest.fixture
async def piston(start_judge: StartJudge) -> str:  # noqa: F811
    """The base URL (``http://host:port/api/v2``) of a judge with two workers."""
    judge, _ = await start_judge(max_running=2)
    return f"{judge.url}/api/v2"


@pytest.fixture
def execute(piston: str, session: aiohttp.ClientSession) -> Execute:  # noqa: F811  # noqa: F811
    """``await execute(body)`` POSTs a Piston execute as ALICE: ``(status, JSON answer)``."""

    async def post(
        body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        async with session.post(f"{piston}/execute", json=body, headers=headers or AUTH) as r:
            return r.status, await r.json()

    return post
