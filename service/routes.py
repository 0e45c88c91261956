"""HTTP handlers: translate requests to domain calls and domain answers to JSON. Thin by design."""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from orchestrator.errors import JudgeError
from orchestrator.mission import normalise, parse_mission
from service.app import RUNTIME, SETTINGS, STORE, WORKERS
from service.errors import ApiError
from service.store import Database, hash_token
from service.workers import QueueFull, ShuttingDown


async def _form_or_json(request: web.Request) -> dict[str, Any]:
    """The request's fields, from a form, multipart or JSON body; raises ``ApiError``."""
    ctype = request.content_type
    if ctype == "application/json":
        try:
            doc = await request.json()
        except ValueError as e:
            raise ApiError(400, "malformed", f"the body is not JSON: {e}", "body") from e
        if not isinstance(doc, dict):
            raise ApiError(400, "malformed", "the body must be a JSON object", "body")
        return doc
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        fields: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, str):
                fields[key] = value
            elif isinstance(value, bytes | bytearray):
                fields[key] = bytes(value).decode(errors="replace")
            else:
                fields[key] = value.file.read().decode(errors="replace")
        return fields
    raise ApiError(
        415,
        "unsupported_media_type",
        "send application/x-www-form-urlencoded, multipart/form-data or application/json",
    )


async def authenticate(request: web.Request, fields: dict[str, Any] | None = None) -> str:
    """Return the hash of a valid token from the body or a Bearer header; raises 401."""
    token = ""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    if not token and fields is not None and isinstance(fields.get("token"), str):
        token = fields["token"]
    if not token:
        raise ApiError(
            401, "unauthorized", "a token is required (field 'token' or Bearer)", "token"
        )
    digest = hash_token(token)
    for allowed in request.app[SETTINGS].tokens:
        if hmac.compare_digest(hash_token(allowed), digest):
            return digest
    if await request.app[STORE].call(Database.token_active, digest):
        return digest
    raise ApiError(401, "unauthorized", "unknown or revoked token", "token")


async def submit_mission(request: web.Request) -> web.Response:
    fields = await _form_or_json(request)
    token_hash = await authenticate(request, fields)
    unknown = sorted(set(fields) - {"token", "mission"})
    if unknown:
        raise ApiError(400, "invalid", f"unknown field '{unknown[0]}'", unknown[0])
    if "mission" not in fields:
        raise ApiError(400, "invalid", "the field 'mission' is required", "mission")
    mission = parse_mission(fields["mission"])
    image = mission.image or request.app[SETTINGS].default_image
    try:
        labels = await request.app[RUNTIME].adapter.image_labels(image)
    except JudgeError as e:
        raise ApiError(503, "engine_unavailable", str(e), headers={"Retry-After": "10"}) from e
    if labels is None:
        raise ApiError(400, "invalid_mission", f"image '{image}' is not installed", "mission.image")
    normalised = normalise(mission)
    raw = fields["mission"]
    stored = json.loads(raw) if isinstance(raw, str | bytes) else raw
    try:
        mission_id = await request.app[WORKERS].submit(token_hash, stored, normalised)
    except QueueFull as e:
        raise ApiError(
            429, "queue_full", str(e), headers={"Retry-After": str(e.retry_after_s)}
        ) from e
    except ShuttingDown as e:
        raise ApiError(
            503, "shutting_down", "the server is stopping", headers={"Retry-After": "5"}
        ) from e
    return web.json_response(
        {"msg": {"id": mission_id, "payload": normalised["return"].get("payload", {})}}
    )


async def _own_mission(request: web.Request) -> Any:
    token_hash = await authenticate(request)
    try:
        mission_id = int(request.match_info["id"])
    except ValueError as e:
        raise ApiError(404, "not_found", "no such mission", "id") from e
    row = await request.app[STORE].call(Database.get_mission, mission_id)
    # Another token's mission is "not found": ids must not reveal what others submitted.
    if row is None or not hmac.compare_digest(row.token_hash, token_hash):
        raise ApiError(404, "not_found", "no such mission", "id")
    return row


async def get_mission(request: web.Request) -> web.Response:
    row = await _own_mission(request)
    return web.json_response(
        {
            "id": row.id,
            "state": row.state,
            "mission": row.normalised,
            "mission_result": row.result,
            "callback": {
                "state": row.callback_state,
                "attempts": row.callback_attempts,
                "error": row.callback_error,
            },
        }
    )


async def cancel_mission(request: web.Request) -> web.Response:
    row = await _own_mission(request)
    state = await request.app[WORKERS].cancel(row.id)
    return web.json_response({"id": row.id, "state": state}, status=202)


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    checks: dict[str, Any] = {}
    try:
        version = await request.app[RUNTIME].adapter.version()
        checks["engine"] = {"ok": True, "version": version.get("Version")}
        labels = await request.app[RUNTIME].adapter.image_labels(settings.default_image)
        checks["default_image"] = {"ok": labels is not None, "name": settings.default_image}
    except JudgeError as e:
        checks["engine"] = {"ok": False, "error": str(e)}
    ok = all(c.get("ok") for c in checks.values()) and len(checks) == 2
    return web.json_response({"ok": ok, "checks": checks}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    workers = request.app[WORKERS]
    counts = await request.app[STORE].call(Database.counts)
    callbacks = await request.app[STORE].call(Database.callback_counts)
    m = workers.metrics
    lines = [
        "# HELP judge_missions Missions in the database by state.",
        "# TYPE judge_missions gauge",
    ]
    for state in ("queued", "running", "done", "cancelled", "failed"):
        lines.append(f'judge_missions{{state="{state}"}} {counts.get(state, 0)}')
    lines += [
        "# HELP judge_queue_depth Missions waiting for a worker.",
        "# TYPE judge_queue_depth gauge",
        f"judge_queue_depth {workers.queue_depth}",
        "# HELP judge_running Missions running now.",
        "# TYPE judge_running gauge",
        f"judge_running {workers.running}",
        "# HELP judge_phase_seconds Time spent per mission phase since start.",
        "# TYPE judge_phase_seconds summary",
    ]
    for phase, seconds in sorted(m.phase_seconds.items()):
        lines.append(f'judge_phase_seconds_sum{{phase="{phase}"}} {seconds:.6f}')
        lines.append(f'judge_phase_seconds_count{{phase="{phase}"}} {m.phase_counts[phase]}')
    lines += [
        "# HELP judge_callbacks Callbacks by delivery state.",
        "# TYPE judge_callbacks gauge",
    ]
    for state in ("waiting", "pending", "delivered", "failed"):
        lines.append(f'judge_callbacks{{state="{state}"}} {callbacks.get(state, 0)}')
    lines += [
        "# HELP judge_callback_failures_total Callbacks given up since start.",
        "# TYPE judge_callback_failures_total counter",
        f"judge_callback_failures_total {m.callback_failures}",
        "# HELP judge_callback_attempts_total Callback POSTs since start.",
        "# TYPE judge_callback_attempts_total counter",
        f"judge_callback_attempts_total {m.callback_attempts}",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/missions/", submit_mission)
    app.router.add_post("/api/missions", submit_mission)
    app.router.add_get("/api/missions/{id}", get_mission)
    app.router.add_delete("/api/missions/{id}", cancel_mission)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


__all__ = ["setup_routes"]
