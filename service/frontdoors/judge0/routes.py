"""The Judge0 CE 1.13.1 HTTP API under ``/judge0``: its routes, its checks in its order, its
error shapes (401 with an empty body, 422 field hashes, 400/404/429/503 ``{"error": ...}``).

Thin: a handler authenticates, reads the query and the body, and hands over to ``Submissions``
and the pure modules (``request``, ``wire``, ``plan``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from orchestrator.errors import EngineUnavailable
from orchestrator.mission import MissionInvalid, normalise, parse_mission
from service.frontdoors.archives import ArchiveRefused
from service.frontdoors.judge0 import plan, wire
from service.frontdoors.judge0.languages import listing
from service.frontdoors.judge0.ports import PORTS, Judge0Ports
from service.frontdoors.judge0.repo import SubmissionRow
from service.frontdoors.judge0.request import SubmissionRequest, parse_submission
from service.frontdoors.judge0.submissions import KIND, Judge0IO, additional_files, render
from service.http.body import INLINE_BODY_BYTES
from service.http.errors import ApiError
from service.pipeline.intake import QueueFull, ShuttingDown
from service.store.protocols import Transaction

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class Judge0Error(Exception):
    """An answer in Judge0's shape: ``body`` None is an empty body."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Judge0Error:
    return Judge0Error(status, {"error": message}, headers)


@web.middleware
async def judge0_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error of the door in Judge0's shape, the judge's own refusals included."""
    try:
        return await handler(request)
    except Judge0Error as e:
        if e.body is None:
            return web.Response(status=e.status, headers=e.headers)
        return web.json_response(e.body, status=e.status, headers=e.headers)
    except ApiError as e:  # the rate limiter's 429
        return web.json_response({"error": e.message}, status=e.status, headers=e.headers)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return web.json_response(
            {"error": e.reason},
            status=e.status,
            headers={"Allow": e.headers.get("Allow", "")} if e.status == 405 else None,
        )


def _ports(request: web.Request) -> Judge0Ports:
    return request.app[PORTS]


async def _tenant(request: web.Request) -> str:
    """The caller's token hash: ``X-Auth-Token`` (header or query) or a Bearer token; a
    token-less caller is the anonymous tenant when that is allowed. Raises 401 (empty body)."""
    ports = _ports(request)
    token = request.headers.get("X-Auth-Token") or request.query.get("X-Auth-Token")
    if not token:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = credentials.strip()
    if not token:
        if ports.settings().anonymous:
            return ports.anonymous_tenant
        raise Judge0Error(401, None)
    token_hash = await ports.authenticate(token)
    if token_hash is None:
        raise Judge0Error(401, None)
    return token_hash


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name) == "true"


def _fields(request: web.Request) -> tuple[str, ...]:
    fields = wire.parse_fields(request.query.get("fields"))
    if fields.error:
        raise _error(400, fields.error)
    return fields.requested


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _decode(raw: bytes, ctype: str) -> dict[str, Any]:
    """A body's parameters (JSON or a form); raises 400. Proportional to the body."""
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise _error(400, "the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise _error(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise _error(400, "the body must be a JSON object")
    return body


async def _body(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The body's parameters over the query's (as Rails merges them), and whether the body is
    large: then it is decoded, validated and turned into a mission in a thread, off the loop
    (a small one costs less there than the hops to a thread)."""
    params: dict[str, Any] = dict(request.query)
    raw = await request.read()
    big = len(raw) > INLINE_BODY_BYTES
    if raw.strip():
        ctype = request.content_type
        params.update(await asyncio.to_thread(_decode, raw, ctype) if big else _decode(raw, ctype))
    return params, big


async def _maybe_off_loop(big: bool, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args) if big else fn(*args)


def _validate(
    ports: Judge0Ports, params: Mapping[str, Any], base64_encoded: bool
) -> tuple[SubmissionRequest | None, dict[str, list[str]]]:
    """A request, or Judge0's error hash; the zip and the callback address are checked too."""
    table = ports.languages()
    got = parse_submission(
        params,
        base64_encoded=base64_encoded,
        config=ports.config(),
        language=lambda i: table[i].facts if i in table else None,
    )
    if isinstance(got, dict):
        return None, got
    errors: dict[str, list[str]] = {}
    try:
        files = additional_files(got.additional_files, ports.config().max_extract_size)
    except ArchiveRefused as e:
        errors["additional_files"] = [str(e)]
    else:
        reserved = sorted(n for n in files if n.split("/", 1)[0] == plan.WORK)
        if reserved:
            errors["additional_files"] = [
                f"'{reserved[0]}': the folder '{plan.WORK}' is the judge's own"
            ]
        elif table[got.language_id].is_project and "run" not in files:
            errors["additional_files"] = ["the zip has no 'run' script at its top level"]
    if got.callback_url is not None:
        refusal = ports.callback_refusal(got.callback_url)
        if refusal:
            errors["callback_url"] = [refusal]
    return (None, errors) if errors else (got, {})


async def _create_one(
    ports: Judge0Ports, token_hash: str, req: SubmissionRequest, *, big: bool, batch: str = ""
) -> tuple[str, int]:
    """Queue a valid submission's mission with its row; returns its token and its mission's id.
    Raises 503 when the queue is full (nothing is stored then).

    The row is written in the transaction that stores the mission, once its id is known: one
    commit for both, and never one without the other. The files go along with the mission on
    one node (no read back when it starts); in a cluster any node may run it and reads them
    from the row."""
    subs = ports.submissions
    row = subs.new_row(token_hash, req, batch=batch)
    single_node = ports.single_node()
    caps = ports.mission_caps()

    def build() -> tuple[dict[str, Any], dict[str, Any], Judge0IO | None]:
        built, io = subs.prepare(row)
        try:
            normalised = normalise(parse_mission(built.mission, caps))
        except MissionInvalid as e:  # a limit beyond what missions allow: the settings'
            raise _error(400, f"this submission cannot be run here: {e}") from None
        return built.mission, normalised, io if single_node else None

    async def write_row(tx: Transaction, mission_id: int) -> None:
        row.mission_id = mission_id
        await subs.repo.insert(row, tx)

    mission, normalised, io = await _maybe_off_loop(big, build)
    try:
        row.mission_id = await ports.submit(token_hash, mission, normalised, KIND, io, write_row)
    except QueueFull as e:
        raise _error(503, "queue is full", {"Retry-After": str(e.retry_after_s)}) from None
    except ShuttingDown:
        raise _error(
            503, "the server is shutting down; retry later", {"Retry-After": "5"}
        ) from None
    return row.token, row.mission_id


async def create(request: web.Request) -> web.Response:
    ports = _ports(request)
    token_hash = await _tenant(request)
    headers = ports.rate_limit(token_hash)
    fields = _fields(request)
    base64_encoded = _flag(request, "base64_encoded")
    params, big = await _body(request)
    req, errors = await _maybe_off_loop(big, _validate, ports, params, base64_encoded)
    if req is None:
        return web.json_response(errors, status=422, headers=headers)
    token, mission_id = await _create_one(ports, token_hash, req, big=big)
    if not _flag(request, "wait"):
        return web.json_response({"token": token}, status=201, headers=headers)
    try:
        row = await ports.wait_for(token, mission_id)
    except EngineUnavailable as e:  # the mission is cancelled: nothing runs for nobody
        raise _error(503, f"{e}; submission {token}", {"Retry-After": "10"}) from None
    if row is None:
        raise _error(503, "the server stopped before the submission ended; read it later")
    status_id = await ports.submissions.live_status(row)
    try:
        doc = render(
            row, status_id, fields, base64_encoded=base64_encoded, languages=ports.languages()
        )
    except wire.NotUtf8 as e:
        doc = {"token": token, "error": str(e)}
    return web.json_response(doc, status=201, headers=headers)


async def create_batch(request: web.Request) -> web.Response:
    ports = _ports(request)
    token_hash = await _tenant(request)
    base64_encoded = _flag(request, "base64_encoded")
    params, big = await _body(request)
    items = params.get("submissions")
    count = len(items) if isinstance(items, list) else 0
    limit = ports.config().max_submission_batch_size
    if count > limit:
        raise _error(
            400, f"number of submissions in a batch should be less than or equal to {limit}"
        )
    if count == 0:
        raise _error(400, "there should be at least one submission in a batch")
    assert isinstance(items, list)
    headers = ports.rate_limit(token_hash)
    callback = params.get("callback_url")
    callback = callback.strip() if isinstance(callback, str) else ""
    batch = ""
    if callback:
        refusal = ports.callback_refusal(callback)
        if refusal:
            return web.json_response({"callback_url": [refusal]}, status=422, headers=headers)
        batch = str(uuid.uuid4())

    def check_all() -> list[tuple[SubmissionRequest | None, dict[str, list[str]]]]:
        return [
            _validate(ports, item if isinstance(item, dict) else {}, base64_encoded)
            for item in items
        ]

    checked = await _maybe_off_loop(big, check_all)
    valid = [req for req, _ in checked if req is not None]
    if batch and valid:
        await ports.submissions.repo.insert_batch(
            batch, token_hash, callback, len(valid), time.time()
        )
    answer: list[Any] = []
    for req, errors in checked:
        if req is None:
            answer.append(errors)
        else:
            token, _ = await _create_one(ports, token_hash, req, big=big, batch=batch)
            answer.append({"token": token})
    status = 201 if valid else 422
    return web.json_response(answer, status=status, headers=headers)


async def _own(request: web.Request, token_hash: str) -> Any:
    row = await _ports(request).submissions.repo.get(request.match_info["token"])
    if row is None or row.token_hash != token_hash:
        raise Judge0Error(404, {"error": "Not Found", "status": 404})
    return row


async def show(request: web.Request) -> web.Response:
    ports = _ports(request)
    token_hash = await _tenant(request)
    fields = _fields(request)
    row = await _own(request, token_hash)
    status_id = await ports.submissions.live_status(row)
    try:
        doc = render(
            row,
            status_id,
            fields,
            base64_encoded=_flag(request, "base64_encoded"),
            languages=ports.languages(),
        )
    except wire.NotUtf8 as e:
        raise _error(400, str(e)) from None
    return web.json_response(doc)


async def show_batch(request: web.Request) -> web.Response:
    ports = _ports(request)
    token_hash = await _tenant(request)
    fields = _fields(request)
    raw = request.headers.get("tokens") or request.query.get("tokens") or ""
    tokens = [t for t in raw.strip().split(",") if t != ""] if raw.strip() else []
    limit = ports.config().max_submission_batch_size
    if len(tokens) > limit:
        raise _error(
            400, f"number of submissions in a batch should be less than or equal to {limit}"
        )
    if not tokens:
        raise _error(400, "there should be at least one submission in a batch")
    base64_encoded = _flag(request, "base64_encoded")
    found = await ports.submissions.repo.get_many(tokens)
    rows = [found.get(token) for token in tokens]
    own = [row if row is not None and row.token_hash == token_hash else None for row in rows]
    docs = await _render_many(ports, own, fields, base64_encoded)
    return web.json_response({"submissions": docs})


async def index(request: web.Request) -> web.Response:
    ports = _ports(request)
    token_hash = await _tenant(request)
    fields = _fields(request)
    page = wire.ruby_to_i(request.query.get("page"))
    per_page = wire.ruby_to_i(request.query.get("per_page"))
    page = 1 if page is None else page
    per_page = 20 if per_page is None else per_page
    if page <= 0:
        raise _error(400, f"invalid page: {page}")
    if per_page < 0:
        raise _error(400, f"invalid per_page: {per_page}")
    per_page = min(per_page, 1000)
    repo = ports.submissions.repo
    total = await repo.count(token_hash)
    rows = await repo.page(token_hash, (page - 1) * per_page, per_page) if per_page else []
    docs = await _render_many(ports, list(rows), fields, _flag(request, "base64_encoded"))
    return web.json_response({"submissions": docs, "meta": wire.pagination(page, per_page, total)})


async def _render_many(
    ports: Judge0Ports,
    rows: list[SubmissionRow | None],
    fields: tuple[str, ...],
    base64_encoded: bool,
) -> list[dict[str, Any] | None]:
    """Submissions as Judge0 lists them (None stays null); 400 when one is not UTF-8."""
    table = ports.languages()
    docs: list[dict[str, Any] | None] = []
    for row in rows:
        if row is None:
            docs.append(None)
            continue
        status_id = await ports.submissions.live_status(row)
        try:
            docs.append(
                render(row, status_id, fields, base64_encoded=base64_encoded, languages=table)
            )
        except wire.NotUtf8:
            raise _error(400, wire.UTF8_ERROR_MANY) from None
    return docs


async def destroy(request: web.Request) -> web.Response:
    ports = _ports(request)
    token_hash = await _tenant(request)
    if not ports.config().enable_submission_delete:
        raise _error(400, "delete not allowed")
    fields = _fields(request)
    row = await _own(request, token_hash)
    status_id = await ports.submissions.live_status(row)
    if status_id in (wire.IN_QUEUE, wire.PROCESSING):
        name = wire.STATUS_NAMES[status_id]
        raise _error(
            400,
            f"submission cannot be deleted because its status is {status_id} ({name})",
        )
    await ports.submissions.repo.delete(row.token, token_hash)
    # As Judge0: always base64, so that whatever was deleted can be given back.
    doc = render(row, status_id, fields, base64_encoded=True, languages=ports.languages())
    return web.json_response(doc)


async def languages(request: web.Request) -> web.Response:
    await _tenant(request)
    return web.json_response(listing(_ports(request).languages(), with_archived=False))


async def languages_all(request: web.Request) -> web.Response:
    await _tenant(request)
    return web.json_response(listing(_ports(request).languages(), with_archived=True))


async def language(request: web.Request) -> web.Response:
    await _tenant(request)
    raw = request.match_info["id"]
    lang = _ports(request).languages().get(int(raw)) if raw.isdigit() else None
    if lang is None:
        raise Judge0Error(404, {"error": "Not Found", "status": 404})
    return web.json_response(lang.doc())


async def statuses(request: web.Request) -> web.Response:
    await _tenant(request)
    return web.json_response(wire.statuses_doc())


async def about(request: web.Request) -> web.Response:
    await _tenant(request)
    return web.json_response(
        wire.about_doc(homepage="", source_code="", maintainer="the operators of this judge")
    )


async def version(request: web.Request) -> web.Response:
    await _tenant(request)
    return web.Response(text=wire.API_VERSION)


async def config_info(request: web.Request) -> web.Response:
    await _tenant(request)
    return web.json_response(_ports(request).config().config_info())


def _system_info() -> dict[str, str]:
    """``lscpu`` and ``free`` as Judge0 reports them, from ``/proc``."""
    info: dict[str, str] = {"Architecture": os.uname().machine, "CPU(s)": str(os.cpu_count())}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    info["Model name"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("MemTotal", "SwapTotal"):
                    kib = int(value.split()[0])
                    info["Mem" if key == "MemTotal" else "Swap"] = f"{kib / 1048576:.1f}Gi"
    except OSError:
        pass
    return info


async def system_info(request: web.Request) -> web.Response:
    await _tenant(request)
    return web.json_response(await asyncio.to_thread(_system_info))


async def workers(request: web.Request) -> web.Response:
    await _tenant(request)
    ports = _ports(request)
    running = await ports.running()
    slots = ports.max_running()
    return web.json_response(
        [
            {
                "queue": wire.API_VERSION,
                "size": await ports.queued(),
                "available": slots,
                "idle": max(0, slots - running),
                "working": running,
                "paused": 0,
                "failed": 0,
            }
        ]
    )


def routes(app: web.Application, ports: Judge0Ports) -> None:
    """Judge0's routes on the sub-application mounted at ``/judge0``."""
    app[PORTS] = ports
    r = app.router
    r.add_post("/submissions", create)
    r.add_get("/submissions", index)
    r.add_post("/submissions/batch", create_batch)
    r.add_get("/submissions/batch", show_batch)
    r.add_get("/submissions/{token}", show)
    r.add_delete("/submissions/{token}", destroy)
    r.add_get("/languages", languages)
    r.add_get("/languages/all", languages_all)
    r.add_get("/languages/{id}", language)
    r.add_get("/statuses", statuses)
    r.add_get("/about", about)
    r.add_get("/version", version)
    r.add_get("/config_info", config_info)
    r.add_get("/system_info", system_info)
    r.add_get("/workers", workers)
