"""The one middleware that turns errors into JSON: ``{"error": {"code", "message", "path"}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from orchestrator.mission import MissionInvalid, MissionTooLarge

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
        return error_response(400, "invalid_mission", e.message, e.path, extra={"errors": e.errors})
    except web.HTTPRequestEntityTooLarge as e:
        return error_response(413, "too_large", f"request body too large ({e.text})", "body")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        headers = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        code = e.reason.lower().replace(" ", "_")
        return error_response(e.status, code, e.reason, headers=headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the server log")
