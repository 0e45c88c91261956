"""Piston's error shape: every error is ``{"message": ...}`` with a status, ours included
(413, 429 and 503 carry ``Retry-After`` where waiting helps)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PistonError(Exception):
    """An answer other than 200: ``status`` and Piston's ``{"message"}`` body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> PistonError:
    return PistonError(400, message)


def message_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Piston's error body: ``{"message": ...}``."""
    return web.Response(
        text=json.dumps({"message": message}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


__all__ = ["PistonError", "bad_request", "message_response"]
