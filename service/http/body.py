"""Request bodies: form, multipart or JSON fields, decoded on the loop when small, else in a
worker process (``service.pipeline.offload``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from service.http.errors import ApiError
from service.keys import OFFLOAD, SETTINGS

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# The one exception to "nothing proportional to a request runs on the event loop": a body of at
# most INLINE_BODY_BYTES is decoded on the loop, and its mission validated there when it plans at
# most INLINE_EXECUTES executes and no tasks (nothing to expand). That costs at most ~2 ms even
# for a body packed with small entries (a hello world: ~0.05 ms), less than the hop it saves
# each submission. Anything larger is decoded in a worker process: in a thread, ``json.loads``
# of a body holds the GIL (the loop's too) for the whole document.
INLINE_BODY_BYTES = 16 * 1024


class EncodedJson(bytes):
    """A field of a large JSON body whose value is an object or an array, as its JSON text.

    The body was decoded in a worker process; sending the structure back would cost this
    process as much as decoding it, so it travels as text to wherever it is used (a mission is
    validated in a worker process too). It is not a ``str``: a token given as one is refused
    exactly as the object was.
    """


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


def _json_fields_encoded(raw: bytes) -> dict[str, Any]:
    """``_json_fields`` with each object or array value as :class:`EncodedJson` (for a worker
    process: what it answers stays small to unpickle); raises ``ApiError``."""
    fields = _json_fields(raw)
    try:
        return {
            k: EncodedJson(json.dumps(v).encode()) if isinstance(v, dict | list) else v
            for k, v in fields.items()
        }
    except RecursionError as e:  # it was decoded from no deeper a text: not seen in practice
        raise ApiError(400, "malformed", "the body is nested too deeply", "body") from e


async def _decode(
    request: web.Request,
    decode: Callable[..., dict[str, Any]],
    big: Callable[..., dict[str, Any]],
    raw: bytes,
    *args: Any,
) -> tuple[dict[str, Any], bool]:
    """``decode(raw, *args)`` on the loop when ``raw`` is at most ``INLINE_BODY_BYTES``, else
    ``big(raw, *args)`` in a worker process; and whether it ran on the loop."""
    if len(raw) <= INLINE_BODY_BYTES:
        return decode(raw, *args), True
    return await request.config_dict[OFFLOAD].run(big, raw, *args), False


async def body_fields(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The request's fields, from a form, multipart or JSON body, and whether the body was at
    most ``INLINE_BODY_BYTES`` (then it was decoded on the loop); raises ``ApiError``.

    A larger body is decoded in a worker process: many megabytes must not stall the event loop.
    Its JSON fields holding an object or an array come as :class:`EncodedJson` (their text).
    """
    limit = request.config_dict[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body is larger than {limit} bytes", "body")
    ctype = request.content_type
    if ctype == "application/json":
        return await _decode(request, _json_fields, _json_fields_encoded, await request.read())
    if ctype == FORM_TYPES[0]:
        charset = request.charset or "utf-8"
        raw = await request.read()
        return await _decode(request, _urlencoded_fields, _urlencoded_fields, raw, charset)
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
