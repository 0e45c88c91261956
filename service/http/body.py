"""Request bodies: form, multipart or JSON fields, decoded on the loop when small, else in a
thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from service.http.errors import ApiError
from service.keys import SETTINGS

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# The one exception to "nothing proportional to a request runs on the event loop": a body of at
# most INLINE_BODY_BYTES is decoded on the loop, and its mission validated there when it plans at
# most INLINE_EXECUTES executes and no tasks (nothing to expand). That costs at most ~2 ms even
# for a body packed with small entries (a hello world: ~0.05 ms), less than the two hops to a
# thread it saves each submission. Anything larger goes to a thread, as before.
INLINE_BODY_BYTES = 16 * 1024


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _json_fields(raw: bytes) -> dict[str, Any]:
    """A JSON body's fields; raises ``ApiError``. Proportional to the body: run in a thread."""
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError as e:
        raise ApiError(400, "malformed", "the body is nested too deeply", "body") from e
    except ValueError as e:
        raise ApiError(400, "malformed", f"the body is not valid JSON: {e}", "body") from e
    if not isinstance(doc, dict):
        raise ApiError(400, "malformed", "the body must be a JSON object", "body")
    return doc


def _urlencoded_fields(raw: bytes, charset: str) -> dict[str, Any]:
    """A form body's fields (the last of a repeated name wins, as before);
    raises ``ApiError``. Proportional to the body: run in a thread."""
    try:
        pairs = parse_qsl(raw.rstrip().decode(charset), keep_blank_values=True, encoding=charset)
    except (UnicodeDecodeError, LookupError, ValueError) as e:
        raise ApiError(400, "malformed", f"the form cannot be read: {e}", "body") from e
    fields: dict[str, Any] = {}
    for key, value in pairs:
        fields[key] = value
    return fields


async def _decode(
    decode: Callable[..., dict[str, Any]], raw: bytes, *args: Any
) -> tuple[dict[str, Any], bool]:
    """``decode(raw, *args)`` on the loop when ``raw`` is at most ``INLINE_BODY_BYTES``, else in
    a thread; and whether it ran on the loop."""
    if len(raw) <= INLINE_BODY_BYTES:
        return decode(raw, *args), True
    return await asyncio.to_thread(decode, raw, *args), False


async def body_fields(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The request's fields, from a form, multipart or JSON body, and whether the body was at
    most ``INLINE_BODY_BYTES`` (then it was decoded on the loop); raises ``ApiError``.

    Decoding a larger body runs in a thread: many megabytes must not stall the event loop.
    """
    limit = request.config_dict[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body is larger than {limit} bytes", "body")
    ctype = request.content_type
    if ctype == "application/json":
        return await _decode(_json_fields, await request.read())
    if ctype == FORM_TYPES[0]:
        charset = request.charset or "utf-8"
        return await _decode(_urlencoded_fields, await request.read(), charset)
    if ctype in FORM_TYPES:
        try:
            form = await request.post()
        except ValueError as e:
            raise ApiError(400, "malformed", f"the form cannot be read: {e}", "body") from e
        fields: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, str):
                fields[key] = value
            elif isinstance(value, bytes | bytearray):
                fields[key] = bytes(value).decode(errors="replace")
            else:  # an uploaded file: its content is the field's value
                fields[key] = value.file.read().decode(errors="replace")
        return fields, False
    raise ApiError(
        415,
        "unsupported_media_type",
        "send application/x-www-form-urlencoded, multipart/form-data or application/json",
        "body",
    )
