"""HTTP handlers: translate requests to domain calls and domain answers to JSON. Thin by design."""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from typing import Any

from aiohttp import web

from orchestrator.languages import short_tag
from orchestrator.mission import Mission, MissionCaps, load_json, plans_little
from orchestrator.mission.result import CANCELLING, ENDED
from service.api.events import stream_events
from service.api.ops import SUPERVISOR_LABEL
from service.api.prepare import Prepared, prepare_mission, prepare_mission_head
from service.http.auth import authenticate
from service.http.body import body_fields
from service.http.errors import INVALID_MISSION, ApiError
from service.http.ratelimit import LIMITER
from service.keys import LANGUAGES, OFFLOAD, RUNTIME, SETTINGS, STORE, WORKERS
from service.pipeline.callbacks import url_refusal
from service.store import MissionRow

SUBMIT_FIELDS = frozenset({"token", "mission"})
MAX_WAIT_S = 60

INLINE_EXECUTES = 16


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
    languages = request.app[LANGUAGES]
    if languages.images is not None and short_tag(image) not in languages.images:
        # Built since the registry last looked: on a shared queue this node claims only the
        # images it knows of, so learn of it now rather than at the next refresh.
        await languages.refresh(max_age_s=1.0)


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


async def _prepare(
    request: web.Request, raw: object, caps: MissionCaps, small_body: bool
) -> Prepared:
    """``prepare_mission`` on the loop for a mission of a small body (``INLINE_BODY_BYTES``)
    that plans little (``INLINE_EXECUTES``, no tasks), else in a worker process (where the
    ``Mission`` answered is its head: ``prepare_mission_head``). A thread would not do: the
    validation holds the GIL, the loop's too, for the whole mission."""
    if small_body:
        # The body is small: decoding the mission's JSON on the loop is bounded too.
        doc = load_json(raw) if isinstance(raw, str | bytes | bytearray) else raw
        if plans_little(doc, INLINE_EXECUTES):
            return prepare_mission(doc, caps)
        raw = doc
    return await request.app[OFFLOAD].run(prepare_mission_head, raw, caps)


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
    fields, small_body = await body_fields(request)
    token_hash = await authenticate(request, fields)
    limit_headers = request.app[LIMITER].take(token_hash)
    unknown = sorted(set(fields) - SUBMIT_FIELDS)
    if unknown:
        raise ApiError(400, INVALID_MISSION, f"unknown field '{unknown[0]}'", unknown[0])
    if "mission" not in fields:
        raise ApiError(400, INVALID_MISSION, "the field 'mission' is required", "mission")
    caps = request.app[SETTINGS].mission_caps
    mission, normalised, stored = await _prepare(request, fields["mission"], caps, small_body)
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
    if row is None or row.state not in ENDED:
        # Not ended within the wait: 202 (poll it), unless the engine is down: then the
        # mission is cancelled and the answer is 503 with Retry-After (send it again).
        if not request.app[STOPPING].is_set():
            await request.app[WORKERS].give_up_if_engine_down(mission_id)
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


LIST_LIMIT = 20
LIST_LIMIT_MAX = 100
LIST_OFFSET_MAX = 1_000_000_000


def _whole(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """``?<name>=N``, a whole number from ``low`` to ``high`` (``default`` when absent); raises
    ``ApiError`` 400 ``invalid_<name>``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(
            400, f"invalid_{name}", f"{name} must be a whole number from {low} to {high}", name
        )
    return int(raw)


def mission_summary(row: MissionRow) -> dict[str, Any]:
    """One entry of ``GET /api/missions``: what a list shows, not the mission or its result."""
    summary: dict[str, Any] = {
        "id": row.id,
        "state": row.state,
        "kind": row.kind,
        "runs": row.runs,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "image": row.normalised.get("image"),
    }
    if "language" in row.normalised:
        summary["language"] = row.normalised["language"]
    if row.error:
        summary["error"] = row.error
    return summary


async def list_missions(request: web.Request) -> web.Response:
    """The caller's own missions (every kind), newest first: at most ``?limit=`` after skipping
    ``?offset=``, and how many there are in all (``total``)."""
    token_hash = await authenticate(request)
    limit = _whole(request, "limit", LIST_LIMIT, 1, LIST_LIMIT_MAX)
    offset = _whole(request, "offset", 0, 0, LIST_OFFSET_MAX)
    missions = request.app[STORE].missions
    rows = await missions.list_missions(token_hash, limit, offset)
    total = await missions.count_missions(token_hash)
    return await _json({"missions": [mission_summary(row) for row in rows], "total": total})


async def get_mission(request: web.Request) -> web.Response:
    return await _json(mission_body(await _own_mission(request)))


async def mission_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events of the mission's progress (``service.api.events``)."""
    return await stream_events(request, await _own_mission(request))


async def cancel_mission(request: web.Request) -> web.Response:
    row = await _own_mission(request)
    state = await request.app[WORKERS].cancel(row.id)
    # 202 while a running mission is being stopped; 200 once it is in a final state.
    return web.json_response(
        {"id": row.id, "state": state}, status=202 if state == CANCELLING else 200
    )


def setup_routes(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_stop_waiting)
    app.router.add_post("/api/missions/", submit_mission)
    app.router.add_post("/api/missions", submit_mission)
    app.router.add_get("/api/missions", list_missions)
    app.router.add_get("/api/missions/{id}", get_mission)
    app.router.add_get("/api/missions/{id}/events", mission_events)
    app.router.add_delete("/api/missions/{id}", cancel_mission)


__all__ = ["setup_routes"]
