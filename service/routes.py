"""HTTP handlers: translate requests to domain calls and domain answers to JSON. Thin by design."""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from orchestrator.errors import JudgeError
from orchestrator.languages import short_tag
from orchestrator.mission import (
    Mission,
    MissionCaps,
    load_json,
    normalise,
    parse_mission,
    plans_little,
)
from service.callbacks import url_refusal
from service.errors import INVALID_MISSION, ApiError
from service.events import stream_events
from service.keys import LANGUAGES, POOL, RUNTIME, SETTINGS, STORE, WORKERS
from service.metrics import metrics
from service.ratelimit import LIMITER
from service.store import MissionRow, hash_token

SUBMIT_FIELDS = frozenset({"token", "mission"})
SUPERVISOR_LABEL = "judge.supervisor"
FINAL_STATES = frozenset({"done", "cancelled", "failed"})
MAX_WAIT_S = 60
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# The one exception to "nothing proportional to a request runs on the event loop": a body of at
# most INLINE_BODY_BYTES is decoded on the loop, and its mission validated there when it plans at
# most INLINE_EXECUTES executes and no tasks (nothing to expand). That costs at most ~2 ms even
# for a body packed with small entries (a hello world: ~0.05 ms), less than the two hops to a
# thread it saves each submission. Anything larger goes to a thread, as before.
INLINE_BODY_BYTES = 16 * 1024
INLINE_EXECUTES = 16


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


async def _body_fields(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The request's fields, from a form, multipart or JSON body, and whether the body was at
    most ``INLINE_BODY_BYTES`` (then it was decoded on the loop); raises ``ApiError``.

    Decoding a larger body runs in a thread: many megabytes must not stall the event loop.
    """
    limit = request.app[SETTINGS].max_body_bytes
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


async def authenticate(request: web.Request, fields: dict[str, Any] | None = None) -> str:
    """Return the hash of a valid token from a Bearer header or the body; raises 401."""
    token: Any = ""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = credentials.strip()
    if not token and fields is not None:
        token = fields.get("token", "")
    if not isinstance(token, str):
        raise ApiError(
            401,
            "unauthorized",
            "the token must be a string",
            "token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token:
        raise ApiError(
            401,
            "unauthorized",
            "a token is required (field 'token' or 'Authorization: Bearer')",
            "token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hash_token(token)
    allowed = False
    for configured in request.app[SETTINGS].tokens:
        allowed |= hmac.compare_digest(hash_token(configured), digest)
    if allowed or await request.app[STORE].tokens.token_active(digest):
        return digest
    raise ApiError(
        401,
        "unauthorized",
        "unknown or revoked token",
        "token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def _check_runtime(request: web.Request, runtime: str) -> None:
    """A mission's ``runtime`` must be in ``JUDGE_RUNTIMES`` (else 400) and offered by the
    engine (else 503: the server is misconfigured, not the mission). Engine errors go to the
    middleware's table."""
    allowed = request.app[SETTINGS].runtimes
    if runtime not in allowed:
        raise ApiError(
            400,
            INVALID_MISSION,
            f"runtime {runtime!r} is not allowed on this server (allowed: {', '.join(allowed)})",
            "mission.runtime",
        )
    offered = await request.app[RUNTIME].adapter.runtimes()
    if runtime not in offered:
        raise ApiError(
            503,
            "runtime_missing",
            f"runtime {runtime!r} is allowed but the engine does not offer it",
            headers={"Retry-After": "60"},
        )


async def _check_runnable(request: web.Request, mission: Mission) -> None:
    """Refuse what would fail for a reason known now: an image without the judge's supervisor,
    a callback address the policy refuses. Engine errors go to the middleware's table."""
    settings = request.app[SETTINGS]
    if mission.return_ is not None:
        refusal = url_refusal(mission.return_.url, settings.address_policy)
        if refusal:
            raise ApiError(400, INVALID_MISSION, refusal, "mission.return.url")
    if mission.runtime is not None:
        await _check_runtime(request, mission.runtime)
    image = mission.image or settings.default_image
    labels = await request.app[RUNTIME].image_labels(image)
    if mission.image is None:
        if labels is None or SUPERVISOR_LABEL not in labels:
            raise ApiError(
                503,
                "default_image_missing",
                f"the default image '{image}' is not installed on this server",
                headers={"Retry-After": "60"},
            )
        return
    if labels is None:
        raise ApiError(400, INVALID_MISSION, f"image '{image}' is not installed", "mission.image")
    if SUPERVISOR_LABEL not in labels:
        raise ApiError(
            400,
            INVALID_MISSION,
            f"image '{image}' is not a judge image (it has no label '{SUPERVISOR_LABEL}')",
            "mission.image",
        )


async def _apply_language(
    request: web.Request, mission: Mission, normalised: dict[str, Any], stored: dict[str, Any]
) -> tuple[Mission, dict[str, Any], dict[str, Any]]:
    """A mission naming a ``language`` runs in the image the registry has for it: set as its
    ``image`` (also in the normalised and stored documents). Raises ``ApiError`` 400 for a
    language no image declares, or an ``image`` that does not declare it."""
    assert mission.language is not None
    languages = request.app[LANGUAGES]
    lang = languages.find(mission.language)
    if lang is None:  # an image built a moment ago: look again (at most once a second)
        lang = (await languages.refresh(max_age_s=1.0)).find(mission.language)
    if lang is None:
        raise ApiError(
            400,
            INVALID_MISSION,
            f"unknown language {mission.language!r} (GET /api/languages lists them)",
            "mission.language",
        )
    if mission.image is not None:
        declaring = {p.image for p in languages.registry.providers(lang.id)}
        if short_tag(mission.image) not in declaring:
            raise ApiError(
                400,
                INVALID_MISSION,
                f"image {mission.image!r} does not provide language {lang.id!r} "
                f"({lang.image} does)",
                "mission.image",
            )
        return mission, normalised, stored
    image = lang.image
    return (
        mission.model_copy(update={"image": image}),
        {**normalised, "image": image},
        {**stored, "image": image},
    )


def prepare_mission(
    raw: object, caps: MissionCaps
) -> tuple[Mission, dict[str, Any], dict[str, Any]]:
    """``(mission, its normalised echo, the document as submitted)`` of a submitted mission.

    Raises ``MissionInvalid``/``MissionTooLarge``. Proportional to the mission: run it in a
    thread, never on the event loop.
    """
    doc = load_json(raw) if isinstance(raw, str | bytes | bytearray) else raw
    mission = parse_mission(doc, caps)
    assert isinstance(doc, dict)  # parse_mission accepted it as an object
    return mission, normalise(mission), doc


async def _prepare(
    raw: object, caps: MissionCaps, small_body: bool
) -> tuple[Mission, dict[str, Any], dict[str, Any]]:
    """``prepare_mission`` on the loop for a mission of a small body (``INLINE_BODY_BYTES``)
    that plans little (``INLINE_EXECUTES``, no tasks), else in a thread."""
    if not small_body:
        return await asyncio.to_thread(prepare_mission, raw, caps)
    # The body is small: decoding the mission's JSON on the loop is bounded too.
    doc = load_json(raw) if isinstance(raw, str | bytes | bytearray) else raw
    if plans_little(doc, INLINE_EXECUTES):
        return prepare_mission(doc, caps)
    return await asyncio.to_thread(prepare_mission, doc, caps)


def _wait_seconds(request: web.Request) -> float | None:
    """``?wait=S`` (0 < S <= 60, a number of seconds) or None; raises ``ApiError`` 400."""
    raw = request.query.get("wait")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_WAIT_S:
        raise ApiError(
            400, "invalid_wait", f"wait must be a number of seconds from 0 to {MAX_WAIT_S}", "wait"
        )
    return seconds


STOPPING = web.AppKey("stopping", asyncio.Event)


async def _stop_waiting(app: web.Application) -> None:
    """``on_shutdown``: submissions waiting for their mission answer 202 now, so that they do
    not hold the server's shutdown for up to ``MAX_WAIT_S``."""
    app[STOPPING].set()


async def _wait_finished(app: web.Application, mission_id: int, wait_s: float) -> MissionRow | None:
    """The mission's row once it ended, or None after ``wait_s`` or when the server stops."""
    finished = asyncio.ensure_future(app[WORKERS].wait_finished(mission_id))
    stopping = asyncio.ensure_future(app[STOPPING].wait())
    try:
        await asyncio.wait(
            {finished, stopping}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopping.cancel()
        if not finished.done():
            finished.cancel()
    return finished.result() if finished.done() and not finished.cancelled() else None


async def submit_mission(request: web.Request) -> web.Response:
    """Store and queue a mission. Answers ``{"msg": {"id", "payload"}}``: 200 at once, or with
    ``?wait=S`` 200 plus the mission's whole state when it ends within S seconds, else 202."""
    wait_s = _wait_seconds(request)
    fields, small_body = await _body_fields(request)
    token_hash = await authenticate(request, fields)
    limit_headers = request.app[LIMITER].take(token_hash)
    unknown = sorted(set(fields) - SUBMIT_FIELDS)
    if unknown:
        raise ApiError(400, INVALID_MISSION, f"unknown field '{unknown[0]}'", unknown[0])
    if "mission" not in fields:
        raise ApiError(400, INVALID_MISSION, "the field 'mission' is required", "mission")
    caps = request.app[SETTINGS].mission_caps
    mission, normalised, stored = await _prepare(fields["mission"], caps, small_body)
    most = request.app[SETTINGS].max_task_parallel
    if mission.tasks.parallel > most:
        raise ApiError(
            400,
            INVALID_MISSION,
            f"must be at most {most} on this server (got {mission.tasks.parallel})",
            "mission.tasks.parallel",
        )
    if mission.language is not None:
        mission, normalised, stored = await _apply_language(request, mission, normalised, stored)
    await _check_runnable(request, mission)
    # QueueFull and ShuttingDown are answered by the error middleware's table.
    mission_id = await request.app[WORKERS].submit(token_hash, stored, normalised)
    payload = normalised["return"]["payload"] if "return" in normalised else {}
    msg = {"msg": {"id": mission_id, "payload": payload}}
    if wait_s is None:
        return web.json_response(msg, headers=limit_headers)
    row = await _wait_finished(request.app, mission_id, wait_s)
    if row is None or row.state not in FINAL_STATES:
        return web.json_response(msg, status=202, headers=limit_headers)
    return await _json({**mission_body(row), **msg}, headers=limit_headers)


async def _own_mission(request: web.Request) -> Any:
    token_hash = await authenticate(request)
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", "no such mission", "id")
    row = await request.app[STORE].missions.get_mission(int(raw))
    # Another token's mission is "not found": ids must not reveal what others submitted.
    if row is None or not hmac.compare_digest(row.token_hash, token_hash):
        raise ApiError(404, "not_found", "no such mission", "id")
    return row


def mission_body(row: MissionRow) -> dict[str, Any]:
    """What ``GET /api/missions/{id}`` answers for a mission."""
    body: dict[str, Any] = {
        "id": row.id,
        "state": row.state,
        "runs": row.runs,
        "mission": row.normalised,
        "mission_result": row.result,
        "callback": {
            "state": row.callback_state,
            "attempts": row.callback_attempts,
            "error": row.callback_error,
        },
    }
    if row.error:
        body["error"] = row.error
    return body


async def _json(body: Any, **kwargs: Any) -> web.Response:
    """A JSON response encoded off the event loop: a mission of thousands of executes echoes
    megabytes."""
    text = await asyncio.to_thread(json.dumps, body)
    return web.Response(text=text, content_type="application/json", **kwargs)


async def get_mission(request: web.Request) -> web.Response:
    return await _json(mission_body(await _own_mission(request)))


async def mission_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events of the mission's progress (``service.events``)."""
    return await stream_events(request, await _own_mission(request))


async def cancel_mission(request: web.Request) -> web.Response:
    row = await _own_mission(request)
    state = await request.app[WORKERS].cancel(row.id)
    # 202 while a running mission is being stopped; 200 once it is in a final state.
    return web.json_response(
        {"id": row.id, "state": state}, status=202 if state == "cancelling" else 200
    )


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    checks: dict[str, dict[str, Any]] = {}
    adapter = request.app[RUNTIME].adapter
    try:
        version = await adapter.version()
        checks["engine"] = {"ok": True, "version": version.get("Version")}
        labels = await adapter.image_labels(settings.default_image)
        checks["default_image"] = {
            "ok": labels is not None and SUPERVISOR_LABEL in labels,
            "name": settings.default_image,
        }
    except JudgeError as e:
        checks["engine"] = {"ok": False, "error": str(e)}
        checks["default_image"] = {"ok": False, "name": settings.default_image}
    try:
        store = request.app[STORE]
        await store.missions.counts()
        checks["database"] = {"ok": True, "engine": store.engine}
    except Exception as e:
        checks["database"] = {"ok": False, "error": str(e)}
    checks["intake"] = {"ok": request.app[WORKERS].accepting}
    # Which node answered: its sandboxes (on its own engine) carry this owner label.
    checks["node"] = {"ok": True, "owner": settings.sandbox_owner}
    ok = all(c["ok"] for c in checks.values())
    # The pool is information, not a check: an empty pool only makes sandboxes slower to get.
    pool = request.app[POOL].snapshot()
    body = {"ok": ok, "checks": checks, "pool": pool}
    return web.json_response(body, status=200 if ok else 503)


async def list_images(request: web.Request) -> web.Response:
    """The sandbox images installed on the engine (label ``judge.supervisor``), from their labels
    only: one cheap engine call, no container. Untagged (dangling) images are left out."""
    await authenticate(request)
    docs = await request.app[RUNTIME].adapter.list_images(SUPERVISOR_LABEL)
    images: list[dict[str, Any]] = []
    for doc in docs:
        tags = sorted(t for t in doc.get("RepoTags") or [] if t and t != "<none>:<none>")
        if not tags:
            continue
        labels = (doc.get("Config") or {}).get("Labels") or {}
        images.append(
            {
                "name": tags[0],
                "tags": tags,
                "id": doc.get("Id"),
                "created": doc.get("Created"),
                "size": doc.get("Size"),
                "image": labels.get("judge.image"),
                "toolchain": labels.get("judge.toolchain"),
                "default": request.app[SETTINGS].default_image in tags
                or f"{request.app[SETTINGS].default_image}:latest" in tags,
            }
        )
    images.sort(key=lambda i: i["name"])
    return web.json_response({"images": images})


async def list_languages(request: web.Request) -> web.Response:
    """The language registry (``service.languages``), after looking at the engine's images
    again when that was more than a second ago."""
    await authenticate(request)
    registry = await request.app[LANGUAGES].refresh(max_age_s=1.0)
    return web.json_response({"languages": [lang.describe() for lang in registry.all()]})


async def list_runtimes(request: web.Request) -> web.Response:
    """The container runtimes a mission may name: those ``JUDGE_RUNTIMES`` allows, each saying
    whether the engine offers it (one cheap engine call, no container)."""
    await authenticate(request)
    offered = set(await request.app[RUNTIME].adapter.runtimes())
    allowed = request.app[SETTINGS].runtimes
    return web.json_response(
        {
            "runtimes": [{"name": name, "available": name in offered} for name in allowed],
            "engine": sorted(offered),
        }
    )


def setup_routes(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_stop_waiting)
    app.router.add_post("/api/missions/", submit_mission)
    app.router.add_post("/api/missions", submit_mission)
    app.router.add_get("/api/missions/{id}", get_mission)
    app.router.add_get("/api/missions/{id}/events", mission_events)
    app.router.add_delete("/api/missions/{id}", cancel_mission)
    app.router.add_get("/api/images", list_images)
    app.router.add_get("/api/languages", list_languages)
    app.router.add_get("/api/runtimes", list_runtimes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


__all__ = ["setup_routes"]
