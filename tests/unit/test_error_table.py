"""One table maps domain exceptions to answers, whichever handler raised them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from orchestrator.errors import EngineUnavailable, SandboxError
from orchestrator.mission import MissionInvalid
from service.http.errors import error_middleware
from service.pipeline.intake import QueueFull, ShuttingDown

Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.mark.parametrize(
    ("error", "status", "code", "retry_after"),
    [
        (QueueFull(retry_after_s=7), 429, "queue_full", "7"),
        (ShuttingDown(), 503, "shutting_down", "5"),
        (EngineUnavailable("engine down"), 503, "engine_unavailable", "10"),
        (SandboxError("boom"), 503, "engine_unavailable", "10"),
        (MissionInvalid("mission.x", "is wrong"), 400, "invalid_mission", None),
        (RuntimeError("a bug"), 500, "internal", None),
    ],
)
async def test_each_exception_has_one_answer(
    aiohttp_client: Client, error: Exception, status: int, code: str, retry_after: str | None
) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/x", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/x")
    assert resp.status == status
    body = await resp.json()
    assert body["error"]["code"] == code
    assert resp.headers.get("Retry-After") == retry_after
    if code == "internal":
        assert "a bug" not in body["error"]["message"]  # the log has it, not the client
    if code == "invalid_mission":
        assert body["error"]["errors"] == [{"path": "mission.x", "message": "is wrong"}]
