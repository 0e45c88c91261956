"""The one middleware that turns errors into JSON: ``{"error": {"code", "message", "path"}}``.

Handlers raise :class:`ApiError` for the client's mistakes they find themselves; domain
exceptions (a full queue, a stopping server, an unreachable engine, an invalid mission) are not
caught in handlers but mapped here, in :data:`ERROR_TABLE`, so each has one status and one code
whichever route raised it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from orchestrator.errors import EngineRefused, EngineUnavailable, ImageNotFound, JudgeError
from orchestrator.mission import MissionInvalid, MissionTooLarge
from service.pipeline.intake import QueueFull, ShuttingDown
from service.store import StoreFull

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An HTTP error with a JSON body; raised by handlers for the client's mistakes."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.headers = headers or {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a worker process (service.pipeline.offload): rebuilt here from its parts.
        return type(self), (self.status, self.code, self.message, self.path, self.headers)


def _no_headers(_: BaseException) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Mapping:
    """How one domain exception becomes an answer."""

    status: int
    code: str
    message: Callable[[BaseException], str] = str
    headers: Callable[[BaseException], dict[str, str]] = _no_headers


def _retry_after(seconds: int) -> Callable[[BaseException], dict[str, str]]:
    return lambda _: {"Retry-After": str(seconds)}


def _queue_retry(e: BaseException) -> dict[str, str]:
    return {"Retry-After": str(getattr(e, "retry_after_s", 1))}


# First match wins (checked with isinstance, in order): put subclasses before their bases.
ERROR_TABLE: tuple[tuple[type[BaseException], Mapping], ...] = (
    (QueueFull, Mapping(429, "queue_full", headers=_queue_retry)),
    (
        ShuttingDown,
        Mapping(503, "shutting_down", lambda _: "the server is stopping", _retry_after(5)),
    ),
    # The engine refused what the request asked for (a malformed image reference that got
    # past the checks, an image that is not there): the request's mistake, not the node's.
    (EngineRefused, Mapping(400, "engine_refused")),
    (ImageNotFound, Mapping(400, "image_not_found")),
    (EngineUnavailable, Mapping(503, "engine_unavailable", headers=_retry_after(10))),
    # This node cannot store anything now; another node (or this one, later) can.
    (StoreFull, Mapping(503, "storage_full", headers=_retry_after(30))),
    # Any other failure of the orchestrator seen by a handler is the engine's side failing.
    (JudgeError, Mapping(503, "engine_unavailable", headers=_retry_after(10))),
)

INVALID_MISSION = "invalid_mission"
"""The one code of a submission the judge refuses for its content (HTTP 400)."""


def error_response(
    status: int,
    code: str,
    message: str,
    path: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> web.Response:
    body: dict[str, object] = {"code": code, "message": message, "path": path}
    if extra:
        body.update(extra)
    return web.json_response({"error": body}, status=status, headers=headers)


def _mapped(e: Exception) -> web.Response | None:
    for kind, how in ERROR_TABLE:
        if isinstance(e, kind):
            return error_response(how.status, how.code, how.message(e), headers=how.headers(e))
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, e.path, e.headers)
    except MissionTooLarge as e:
        return error_response(
            413, "mission_too_large", e.message, e.path, extra={"errors": e.errors}
        )
    except MissionInvalid as e:
        # Checked before JudgeError (its base): a client's mistake, not the engine's.
        return error_response(400, INVALID_MISSION, e.message, e.path, extra={"errors": e.errors})
    except web.HTTPRequestEntityTooLarge as e:
        return error_response(413, "too_large", f"request body too large ({e.text})", "body")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        headers = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        code = e.reason.lower().replace(" ", "_")
        return error_response(e.status, code, e.reason, headers=headers)
    except Exception as e:
        response = _mapped(e)
        if response is not None:
            return response
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the server log")
