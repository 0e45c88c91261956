"""The Piston door's HTTP plumbing: its error middleware, its authentication, its body.

Every error leaves as Piston's ``{"message": ...}``: Piston's own 400s, our 401, 413, 429
(with ``Retry-After`` and the rate-limit headers) and 503 (with ``Retry-After``), and Piston's
404 ``Not Found`` for anything else under its prefix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from orchestrator.errors import EngineUnavailable, JudgeError
from orchestrator.mission import MissionInvalid, MissionTooLarge
from service.frontdoors.piston.errors import PistonError, message_response
from service.http.errors import ApiError
from service.pipeline.intake import QueueFull, ShuttingDown

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ANONYMOUS_TENANT = "anonymous:piston"
"""The tenant (in place of a token hash) of token-less clients when anonymous use is on."""

INLINE_BODY_BYTES = 16 * 1024
"""Bodies up to this size are decoded on the event loop; larger ones in a thread."""


def _answer(e: BaseException) -> web.Response | None:
    """Piston's answer to an error raised by a handler or the core; None for unknown ones."""
    if isinstance(e, PistonError):
        return message_response(e.status, e.message, e.headers)
    if isinstance(e, ApiError):
        return message_response(e.status, e.message, e.headers)
    if isinstance(e, QueueFull):
        return message_response(
            429, "the judge's queue is full; retry later", {"Retry-After": str(e.retry_after_s)}
        )
    if isinstance(e, ShuttingDown):
        return message_response(503, "the judge is stopping; retry later", {"Retry-After": "5"})
    if isinstance(e, MissionTooLarge):
        return message_response(413, e.message)
    if isinstance(e, MissionInvalid):
        return message_response(400, e.message)
    if isinstance(e, EngineUnavailable | JudgeError):
        return message_response(
            503, f"the judge cannot run programs right now: {e}", {"Retry-After": "10"}
        )
    if isinstance(e, web.HTTPRequestEntityTooLarge):
        return message_response(413, f"request body too large ({e.text})")
    if isinstance(e, web.HTTPException) and e.status >= 400:
        return message_response(e.status, e.reason)
    return None


@web.middleware
async def piston_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error of the door's routes into Piston's ``{"message"}``."""
    try:
        return await handler(request)
    except Exception as e:
        answer = _answer(e)
        if answer is not None:
            return answer
        log.exception("piston: unhandled error on %s %s", request.method, request.path)
        return message_response(500, "internal error; see the server log")


def bearer_or_bare(header: str) -> str:
    """The token of an ``Authorization`` value: ``Bearer <token>`` or the token alone (the way
    Piston clients such as aiopyston send an API key)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return header.strip()


def _json_error(raw: bytes, e: json.JSONDecodeError) -> str:
    """A malformed body's message, worded as Node's JSON parser words it."""
    if e.pos >= len(e.doc):
        return "Unexpected end of JSON input"
    char = e.doc[e.pos]
    return f"Unexpected token {char} in JSON at position {e.pos}"


def decode_json(raw: bytes) -> Any:
    """The JSON document of a body (whatever its Content-Type); raises 400."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PistonError(400, "the body is not UTF-8 encoded JSON") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise PistonError(400, _json_error(raw, e)) from None
    except RecursionError:
        raise PistonError(400, "the body is nested too deeply") from None
    except ValueError as e:
        raise PistonError(400, f"the body is not valid JSON: {e}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


__all__ = [
    "ANONYMOUS_TENANT",
    "INLINE_BODY_BYTES",
    "bearer_or_bare",
    "decode_json",
    "piston_errors",
]
