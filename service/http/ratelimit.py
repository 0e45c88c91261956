"""Per-token submission limits: ``JUDGE_RATE_LIMIT`` submissions per minute per token.

A fixed one-minute window per token, counted in memory (a restart forgets the counts). Answers
to submissions carry the ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds until the window ends) headers; a submission beyond the limit is refused with 429 and
``Retry-After``. A limit of 0 turns the whole thing off (no headers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from aiohttp import web

from service.http.errors import ApiError

WINDOW_S = 60.0
_PRUNE_EVERY = 1024


class RateLimiter:
    """Counts submissions per token hash in fixed windows of :data:`WINDOW_S` seconds."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # token hash -> (start, count)

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, token_hash: str) -> dict[str, str]:
        """Count one submission; returns the headers to send. Raises ``ApiError`` 429 when the
        token has used its submissions of this window (the refusal is not counted)."""
        if not self.enabled:
            return {}
        now = self._clock()
        if len(self._windows) >= _PRUNE_EVERY:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < WINDOW_S}
        start, count = self._windows.get(token_hash, (now, 0))
        if now - start >= WINDOW_S:
            start, count = now, 0
        reset = max(1, math.ceil(start + WINDOW_S - now))
        if count >= self.per_minute:
            headers = self._headers(0, reset)
            headers["Retry-After"] = str(reset)
            raise ApiError(
                429,
                "rate_limited",
                f"at most {self.per_minute} submissions per minute per token; retry in {reset} s",
                headers=headers,
            )
        self._windows[token_hash] = (start, count + 1)
        return self._headers(self.per_minute - count - 1, reset)

    def _headers(self, remaining: int, reset: int) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.per_minute),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }


LIMITER = web.AppKey("rate_limiter", RateLimiter)

__all__ = ["LIMITER", "WINDOW_S", "RateLimiter"]
