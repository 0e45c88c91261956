"""Small GET requests to a local engine's Unix socket, made from the event loop itself.

The SDK's calls run on threads, and a thread needs the GIL at every step of a request (tens of
times for one call). While the loop's thread is busy with a large mission, each of those steps
waits for it: a ``/version`` that answers in 2 ms on an idle server took 40-140 ms while a
10,000-file mission was being fetched. The small, frequent look-ups (the engine's version, an
image's labels: what ``/healthz`` and intake ask) are made here instead, on the loop, where they
cost the engine's own time and a few loop steps. Only the adapter (docker.py) uses this module.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from orchestrator.errors import EngineRefused, EngineUnavailable

MAX_ANSWER_BYTES = 4 << 20  # an inspect document is a few KiB; anything near this is not one


async def get_json(socket_path: str, path: str, *, timeout_s: float) -> tuple[int, Any]:
    """``GET path`` on the engine listening on ``socket_path``; returns the HTTP status and the
    decoded JSON body (None when the body is empty or not JSON: an error's text, say).

    HTTP/1.0, one connection per request: the engine answers without chunking and closes the
    connection, so the answer is simply everything read. Raises ``EngineUnavailable`` when the
    socket cannot be reached, nothing comes back within ``timeout_s``, or the answer is not HTTP
    or larger than ``MAX_ANSWER_BYTES``.
    """
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_unix_connection(socket_path)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
                raw = bytearray()
                while chunk := await reader.read(64 * 1024):
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise EngineUnavailable(
                            f"Docker engine error: an answer to GET {path} over "
                            f"{MAX_ANSWER_BYTES} bytes"
                        )
            finally:
                writer.close()
    except TimeoutError as e:
        raise EngineUnavailable(
            f"Docker engine unavailable: no answer to GET {path} within {timeout_s:g} s"
        ) from e
    except OSError as e:
        raise EngineUnavailable(f"Docker engine unavailable: {e}") from e
    return _parse(bytes(raw), path)


def _parse(raw: bytes, path: str) -> tuple[int, Any]:
    """The status and JSON body of a whole HTTP answer; raises ``EngineUnavailable``."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        raise EngineUnavailable(f"Docker engine error: the answer to GET {path} is not HTTP")
    try:
        status = int(status_line[1])
    except ValueError as e:
        raise EngineUnavailable(
            f"Docker engine error: the answer to GET {path} has no status"
        ) from e
    try:
        doc = json.loads(body) if body.strip() else None
    except ValueError:
        doc = None
    return status, doc


async def version(socket_path: str, api: str, *, timeout_s: float) -> dict[str, Any]:
    """The engine's version document (API version ``api``); raises ``EngineUnavailable``."""
    status, doc = await get_json(socket_path, f"/v{api}/version", timeout_s=timeout_s)
    if status != 200 or not isinstance(doc, dict):
        raise EngineUnavailable(f"Docker engine error: {message(status, doc)}")
    return doc


async def image_labels(
    socket_path: str, api: str, image: str, *, timeout_s: float
) -> dict[str, str] | None:
    """``image``'s labels ({} when it has none), None when it is not there. Raises
    ``EngineRefused`` for a reference the engine rejects, ``EngineUnavailable`` when it does
    not answer (the errors the adapter's SDK path raises)."""
    path = f"/v{api}/images/{quote(image, safe='/:')}/json"
    status, doc = await get_json(socket_path, path, timeout_s=timeout_s)
    if status == 404:
        return None
    if status == 200 and isinstance(doc, dict):
        return dict((doc.get("Config") or {}).get("Labels") or {})
    said = message(status, doc)
    # (A 3xx: the engine cleaned the path of a reference with "..", which is no valid reference;
    # the SDK would have followed it to another image.)
    if 300 <= status < 500 and status != 409:
        raise EngineRefused(f"the Docker engine refused the request: {said}")
    raise EngineUnavailable(f"Docker engine error: {said}")


class LocalEngine:
    """The look-ups above for one engine: its socket, the API version, the timeout."""

    def __init__(self, socket_path: str, api: str, timeout_s: float) -> None:
        self.socket_path = socket_path
        self._api = api
        self._timeout_s = timeout_s

    async def version(self) -> dict[str, Any]:
        return await version(self.socket_path, self._api, timeout_s=self._timeout_s)

    async def image_labels(self, image: str) -> dict[str, str] | None:
        return await image_labels(self.socket_path, self._api, image, timeout_s=self._timeout_s)


def message(status: int, doc: Any) -> str:
    """What the engine said was wrong (its ``message`` field), else the status."""
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return f"HTTP {status}"


__all__ = ["MAX_ANSWER_BYTES", "LocalEngine", "get_json", "image_labels", "message", "version"]
