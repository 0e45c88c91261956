"""One table maps domain exceptions to answers, whichever handler raised them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from orchestrator.errors import (
    EngineRefused,
    EngineUnavailable,
    ImageNotFound,
    JudgeError,
    PathNotFound,
    SandboxError,
)
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


def _every_judge_error() -> list[type[JudgeError]]:
    found: list[type[JudgeError]] = []
    todo = [JudgeError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return sorted(set(found), key=lambda k: k.__name__)


# Every error the orchestrator raises, and what a handler seeing it answers: the request's
# mistakes are 4xx, the node's failures 503 (a load balancer takes the node out on those).
EXPECTED_STATUS = {
    "JudgeError": 503,
    "EngineUnavailable": 503,
    "EngineRefused": 400,
    "ImageNotFound": 400,
    "MissionInterrupted": 503,
    "SandboxError": 503,
    "SandboxLost": 503,
    "PathNotFound": 503,
    "TransferRefused": 503,
    "MissionInvalid": 400,
    "MissionTooLarge": 413,
}


def _instance(kind: type[JudgeError]) -> JudgeError:
    if kind is ImageNotFound:
        return ImageNotFound("judge/none")
    if kind is PathNotFound:
        return PathNotFound("x")
    if issubclass(kind, MissionInvalid):
        return kind("mission.x", "is wrong")
    return kind("what went wrong")


@pytest.mark.parametrize("kind", _every_judge_error(), ids=lambda k: k.__name__)
async def test_every_engine_error_class_has_a_decided_answer(
    aiohttp_client: Client, kind: type[JudgeError]
) -> None:
    # A new error class must be decided here: the request's fault (4xx) or the node's (503).
    assert kind.__name__ in EXPECTED_STATUS, f"{kind.__name__}: 4xx or 503? decide here"

    async def handler(request: web.Request) -> web.Response:
        raise _instance(kind)

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/x", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/x")
    assert resp.status == EXPECTED_STATUS[kind.__name__]
    if resp.status == 503:
        assert resp.headers["Retry-After"] == "10"
    # A node failure mapped to 4xx would hide it; a request's mistake mapped to 503 would take
    # a healthy node out of a load balancer. Infrastructure errors are never the request's.
    if kind.infrastructure:
        assert resp.status == 503


def test_the_engine_refusing_a_request_is_engine_refused_not_unavailable() -> None:
    import docker.errors
    import requests

    from orchestrator.sandbox.docker import _guard

    def answer(status: int) -> Callable[[], None]:
        def call() -> None:
            response = requests.Response()
            response.status_code = status
            raise docker.errors.APIError(
                "engine says no", response, explanation="invalid reference format"
            )

        return _guard(call)

    with pytest.raises(EngineRefused, match="invalid reference format"):
        answer(400)()
    with pytest.raises(EngineUnavailable, match="invalid reference format"):
        answer(500)()
    with pytest.raises(EngineUnavailable):
        answer(409)()  # a conflict (removal in progress) is the judge's own business
