"""Request bodies: form, multipart or JSON fields, decoded on the loop when small, else in a
worker process (``service.pipeline.offload``)."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from orchestrator.mission.caps import json_loads
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


def _json_fields(raw: bytes) -> dict[str, Any]:
    """A JSON body's fields; raises ``ApiError``. Proportional to the body: run in a thread."""
    try:
        doc = json_loads(raw)
    except RecursionError as e:
        raise ApiError(400, "malformed", "the body is nested too deeply", "body") from e
    except ValueError as e:
        raise ApiError(400, "malformed", f"the body is not valid JSON: {e}", "body") from e
    if not isinstance(doc, dict):
        raise ApiError(400, "malformed", "the body must be a JSON object", "body")
    return doc


def _urlencoded_fields(raw: bytes, charset: str) -> dict[str, Any]:
    """A form body's fields (the last of a repeated name wins, as before); raises
    ``ApiError``. Proportional to the body: on the loop only when it is small.

    A UTF-8 form whose every ``%`` starts an escape (what browsers and HTTP clients send) is
    decoded by ``_form_unquote`` in C; any other by ``urllib.parse.parse_qsl``, with the same
    answer (a test compares the two on random forms)."""
    if charset.lower().replace("-", "") == "utf8":
        body = raw.rstrip()
        try:
            body.decode()  # refused as parse_qsl's path refuses it
        except UnicodeDecodeError as e:
            raise ApiError(400, "malformed", f"the form cannot be read: {e}", "body") from e
        if not _LOOSE_PERCENT.search(body):
            fields: dict[str, Any] = {}
            for pair in body.split(b"&"):
                if pair:
                    name, _, value = pair.partition(b"=")
                    fields[_form_unquote(name)] = _form_unquote(value)
            return fields
    return _parse_qsl_fields(raw, charset)


def _parse_qsl_fields(raw: bytes, charset: str) -> dict[str, Any]:
    """``_urlencoded_fields`` by ``urllib.parse.parse_qsl``, for any charset and any ``%``."""
    try:
        pairs = parse_qsl(raw.rstrip().decode(charset), keep_blank_values=True, encoding=charset)
    except (UnicodeDecodeError, LookupError, ValueError) as e:
        raise ApiError(400, "malformed", f"the form cannot be read: {e}", "body") from e
    fields: dict[str, Any] = {}
    for key, value in pairs:
        fields[key] = value
    return fields


# A "%" not followed by two hex digits: parse_qsl keeps it as it is, _form_unquote would not.
_LOOSE_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _form_unquote(raw: bytes) -> str:
    """One name or value of a UTF-8 form whose every ``%`` is followed by two hex digits,
    decoded as ``parse_qsl`` decodes it: ``+`` a space, ``%XX`` a byte, bytes that are not
    UTF-8 U+FFFD. ``urllib``'s unquoting loops in Python over every escape (a hello world's
    mission has about a hundred: 11 us a form here); ``binascii.a2b_qp`` decodes
    quoted-printable's ``=XX`` in C (2 us), which is the same once each ``=`` of the text is
    itself written ``=3D`` and each ``%`` becomes ``=``. Its other rule, a line break after
    ``=``, cannot apply: every ``=`` is followed by two hex digits."""
    raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        raw = binascii.a2b_qp(raw.replace(b"=", b"=3D").replace(b"%", b"="))
    return raw.decode("utf-8", "replace")


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
