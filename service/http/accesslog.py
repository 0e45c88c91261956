"""The access log, without credentials: a token sent in the query string is never written.

The front doors still accept ``?token=`` for clients written against the seed, so the request
line is logged with the value of every credential-like query parameter replaced.
"""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from yarl import URL

REDACTED = "REDACTED"
SECRET_PARAMS = frozenset({"token", "access_token", "auth", "key", "secret", "password"})


def redacted_target(url: URL) -> str:
    """The path and query of ``url`` with the values of credential-like parameters replaced."""
    query = url.query
    if not any(k.lower() in SECRET_PARAMS for k in query):
        return url.raw_path_qs
    pairs = [(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in query.items()]
    return str(url.with_query(pairs).with_fragment(None))


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request: client, request line (redacted), status, bytes, seconds, agent."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        self.logger.info(
            '%s "%s %s %s" %d %d %.3fs "%s"',
            request.remote or "-",
            request.method,
            redacted_target(request.rel_url),
            version,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )
