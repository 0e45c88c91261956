"""HTTP handlers: translate requests to domain calls and domain answers to JSON. Thin by design."""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from orchestrator.errors import JudgeError
from orchestrator.mission import Mission, normalise, parse_mission
from service.callbacks import url_refusal
from service.errors import ApiError
from service.keys import POOL, RETENTION, RUNTIME, SETTINGS, STORE, WORKERS
from service.store import CALLBACK_STATES, MISSION_STATES, Database, hash_token
from service.workers import QueueFull, ShuttingDown

SUBMIT_FIELDS = frozenset({"token", "mission"})
SUPERVISOR_LABEL = "judge.supervisor"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


async def _body_fields(request: web.Request) -> dict[str, Any]:
    """The request's fields, from a form, multipart or JSON body; raises ``ApiError``."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body is larger than {limit} bytes", "body")
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.read()
        try:
            doc = json.loads(raw, parse_constant=_reject_constant)
        except RecursionError as e:
            raise ApiError(400, "malformed", "the body is nested too deeply", "body") from e
        except ValueError as e:
            raise ApiError(400, "malformed", f"the body is not valid JSON: {e}", "body") from e
        if not isinstance(doc, dict):
            raise ApiError(400, "malformed", "the body must be a JSON object", "body")
        return doc
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
        return fields
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
    if allowed or await request.app[STORE].call(Database.token_active, digest):
        return digest
    raise ApiError(
        401,
        "unauthorized",
        "unknown or revoked token",
        "token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def _check_runnable(request: web.Request, mission: Mission) -> None:
    """Refuse what would fail for a reason known now: an image without the judge's supervisor,
    a callback address the policy refuses."""
    settings = request.app[SETTINGS]
    refusal = url_refusal(mission.return_.url, settings.block_private_urls)
    if refusal:
        raise ApiError(400, "invalid_mission", refusal, "mission.return.url")
    image = mission.image or settings.default_image
    try:
        labels = await request.app[RUNTIME].image_labels(image)
    except JudgeError as e:
        raise ApiError(503, "engine_unavailable", str(e), headers={"Retry-After": "10"}) from e
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
        raise ApiError(400, "invalid_mission", f"image '{image}' is not installed", "mission.image")
    if SUPERVISOR_LABEL not in labels:
        raise ApiError(
            400,
            "invalid_mission",
            f"image '{image}' is not a judge image (it has no label '{SUPERVISOR_LABEL}')",
            "mission.image",
        )


async def submit_mission(request: web.Request) -> web.Response:
    fields = await _body_fields(request)
    token_hash = await authenticate(request, fields)
    unknown = sorted(set(fields) - SUBMIT_FIELDS)
    if unknown:
        raise ApiError(400, "invalid", f"unknown field '{unknown[0]}'", unknown[0])
    if "mission" not in fields:
        raise ApiError(400, "invalid", "the field 'mission' is required", "mission")
    mission = parse_mission(fields["mission"])
    most = request.app[SETTINGS].max_task_parallel
    if mission.tasks.parallel > most:
        raise ApiError(
            400,
            "invalid_mission",
            f"must be at most {most} on this server (got {mission.tasks.parallel})",
            "mission.tasks.parallel",
        )
    await _check_runnable(request, mission)
    normalised = normalise(mission)
    raw = fields["mission"]
    stored = json.loads(raw) if isinstance(raw, str) else raw  # parse_mission read it already
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
    payload = normalised["return"]["payload"]
    return web.json_response({"msg": {"id": mission_id, "payload": payload}})


async def _own_mission(request: web.Request) -> Any:
    token_hash = await authenticate(request)
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", "no such mission", "id")
    row = await request.app[STORE].call(Database.get_mission, int(raw))
    # Another token's mission is "not found": ids must not reveal what others submitted.
    if row is None or not hmac.compare_digest(row.token_hash, token_hash):
        raise ApiError(404, "not_found", "no such mission", "id")
    return row


async def get_mission(request: web.Request) -> web.Response:
    row = await _own_mission(request)
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
    return web.json_response(body)


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
        await request.app[STORE].call(Database.counts)
        checks["database"] = {"ok": True}
    except Exception as e:
        checks["database"] = {"ok": False, "error": str(e)}
    checks["intake"] = {"ok": request.app[WORKERS].accepting}
    ok = all(c["ok"] for c in checks.values())
    # The pool is information, not a check: an empty pool only makes sandboxes slower to get.
    pool = request.app[POOL].snapshot()
    body = {"ok": ok, "checks": checks, "pool": pool}
    return web.json_response(body, status=200 if ok else 503)


async def list_images(request: web.Request) -> web.Response:
    """The sandbox images installed on the engine (label ``judge.supervisor``), from their labels
    only: one cheap engine call, no container. Untagged (dangling) images are left out."""
    await authenticate(request)
    try:
        docs = await request.app[RUNTIME].adapter.list_images(SUPERVISOR_LABEL)
    except JudgeError as e:
        raise ApiError(503, "engine_unavailable", str(e), headers={"Retry-After": "10"}) from e
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


def _metric(lines: list[str], name: str, kind: str, help_: str) -> None:
    lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]


async def metrics(request: web.Request) -> web.Response:
    workers = request.app[WORKERS]
    counts = await request.app[STORE].call(Database.counts)
    callbacks = await request.app[STORE].call(Database.callback_counts)
    m = workers.metrics
    lines: list[str] = []
    _metric(lines, "judge_missions", "gauge", "Missions in the database by state.")
    for state in MISSION_STATES:
        lines.append(f'judge_missions{{state="{state}"}} {counts.get(state, 0)}')
    _metric(lines, "judge_queue_depth", "gauge", "Missions waiting for a worker.")
    lines.append(f"judge_queue_depth {workers.queue_depth}")
    _metric(lines, "judge_running", "gauge", "Missions running now.")
    lines.append(f"judge_running {workers.running}")
    _metric(lines, "judge_missions_finished_total", "counter", "Missions finished, by state.")
    for state in ("done", "cancelled", "failed"):
        n = m.missions_finished.get(state, 0)
        lines.append(f'judge_missions_finished_total{{state="{state}"}} {n}')
    _metric(lines, "judge_mission_seconds", "summary", "Time missions spent running.")
    ran = sum(m.missions_finished.get(s, 0) for s in ("done", "cancelled"))
    lines.append(f"judge_mission_seconds_sum {m.mission_seconds_sum:.6f}")
    lines.append(f"judge_mission_seconds_count {ran}")
    _metric(lines, "judge_phase_seconds", "summary", "Time spent per mission phase.")
    for phase, seconds in sorted(m.phase_seconds.items()):
        lines.append(f'judge_phase_seconds_sum{{phase="{phase}"}} {seconds:.6f}')
        lines.append(f'judge_phase_seconds_count{{phase="{phase}"}} {m.phase_counts[phase]}')
    _metric(lines, "judge_callbacks", "gauge", "Callbacks in the database by delivery state.")
    for state in CALLBACK_STATES:
        lines.append(f'judge_callbacks{{state="{state}"}} {callbacks.get(state, 0)}')
    _metric(lines, "judge_callback_attempts_total", "counter", "Callback POSTs.")
    lines.append(f"judge_callback_attempts_total {m.callback_attempts}")
    _metric(lines, "judge_callbacks_delivered_total", "counter", "Callbacks delivered.")
    lines.append(f"judge_callbacks_delivered_total {m.callbacks_delivered}")
    _metric(lines, "judge_callback_failures_total", "counter", "Callbacks given up.")
    lines.append(f"judge_callback_failures_total {m.callback_failures}")
    _metric(
        lines,
        "judge_turnaround_seconds",
        "summary",
        "From a mission's submission to its delivered callback.",
    )
    lines.append(f"judge_turnaround_seconds_sum {m.turnaround_seconds_sum:.6f}")
    lines.append(f"judge_turnaround_seconds_count {m.turnaround_count}")
    _pool_metrics(lines, request.app[POOL].snapshot())
    lines += request.app[RETENTION].metric_lines()  # storage freed by the retention period
    return web.Response(
        body=("\n".join(lines) + "\n").encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


def _pool_metrics(lines: list[str], pool: dict[str, Any]) -> None:
    _metric(lines, "judge_pool_ready", "gauge", "Warm sandboxes ready, by image.")
    for image, figures in sorted(pool["images"].items()):
        lines.append(f'judge_pool_ready{{image="{image}"}} {figures["ready"]}')
    _metric(lines, "judge_pool_target", "gauge", "Warm sandboxes wanted, by image.")
    for image, figures in sorted(pool["images"].items()):
        lines.append(f'judge_pool_target{{image="{image}"}} {figures["target"]}')
    for name, help_ in [
        ("hits", "Sandboxes taken warm from the pool."),
        ("misses", "Sandboxes created on demand (none warm)."),
        ("discarded", "Warm sandboxes removed unused (image changed, found dead)."),
    ]:
        _metric(lines, f"judge_pool_{name}_total", "counter", help_)
        lines.append(f"judge_pool_{name}_total {pool[name]}")


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/missions/", submit_mission)
    app.router.add_post("/api/missions", submit_mission)
    app.router.add_get("/api/missions/{id}", get_mission)
    app.router.add_delete("/api/missions/{id}", cancel_mission)
    app.router.add_get("/api/images", list_images)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


__all__ = ["setup_routes"]
