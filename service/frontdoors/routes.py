"""HTTP handlers of the front doors: the executor API (``/rest/...``) and the exec API
(``/v1/{account}``). Thin: they authenticate, translate and hand over to the doors and workers.

Both take a judge token as ``Authorization: Bearer``, ``X-Auth-Token`` or the ``token`` query
parameter. Blobs and executor jobs belong to the tokens that made them: any other token gets 404
as if they did not exist (storage is still shared by content); exec requests answer only to the
request that made them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from orchestrator.mission import MissionInvalid, MissionTooLarge, normalise, parse_mission
from orchestrator.runner import MissionIO
from service.errors import INVALID_MISSION, ApiError
from service.frontdoors import executor, zerovm
from service.frontdoors.blobs import (
    BlobRefused,
    BlobTooLarge,
    QuotaExceeded,
    blob_doc,
    parse_metadata,
)
from service.frontdoors.mimes import mime_type
from service.keys import BLOBS, EXECUTOR, SETTINGS, STORE, WORKERS
from service.routes import authenticate
from service.store import JobRow

_PYTHON_TYPES = ("application/python", "text/x-python", "application/x-python")
_TAR_TYPES = ("application/x-tar", "application/x-gtar", "application/tar")


async def front_token(request: web.Request) -> str:
    """The hash of a valid token from Bearer, ``X-Auth-Token`` or ``?token=``; raises 401."""
    token = request.headers.get("X-Auth-Token") or request.query.get("token")
    if not token and not request.headers.get("Authorization"):
        raise ApiError(
            401,
            "unauthorized",
            "a token is required ('Authorization: Bearer', 'X-Auth-Token' or '?token=')",
            "token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await authenticate(request, {"token": token} if token else None)


async def _submit(
    request: web.Request, token_hash: str, mission: dict[str, Any], io: MissionIO
) -> int:
    try:
        caps = request.app[SETTINGS].mission_caps
        normalised = await asyncio.to_thread(lambda: normalise(parse_mission(mission, caps)))
    except MissionTooLarge as e:
        raise ApiError(413, "too_large", e.message, "body") from None
    except MissionInvalid as e:
        raise ApiError(400, INVALID_MISSION, e.message, "body") from None
    # QueueFull and ShuttingDown are answered by the error middleware's table.
    return await request.app[WORKERS].submit(
        token_hash, mission, normalised, kind=zerovm.KIND, io=io
    )


# -- blobs ---------------------------------------------------------------------------------------


def _content_disposition(name: str) -> str:
    """``attachment`` with the file name, RFC 6266 style (ASCII fallback plus ``filename*``)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def _blob_errors(e: Exception) -> ApiError:
    if isinstance(e, QuotaExceeded):
        return ApiError(413, "quota_exceeded", str(e))
    if isinstance(e, BlobTooLarge):
        return ApiError(413, "too_large", str(e), "hash")
    return ApiError(400, "invalid", str(e), "body")


async def create_file(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    name = request.match_info["name"]
    if not name or "/" in name or "\x00" in name or len(name) > 255:
        raise ApiError(400, "invalid", "the blob name must be a file name", "name")
    data = await request.read()
    try:
        row = await request.app[BLOBS].put_file(token_hash, name, data)
    except QuotaExceeded as e:
        raise _blob_errors(e) from None
    return web.json_response({row.hash: blob_doc(row)})


async def create_metadata(request: web.Request) -> web.Response:
    """WebGME's ``putMetadata`` (``Artifact.save``): a complex artifact of stored files."""
    token_hash = await front_token(request)
    raw = await request.read()
    try:
        doc, refs = await request.app[BLOBS].run(parse_metadata, raw)
        row = await request.app[BLOBS].put_metadata(token_hash, doc, refs)
    except (BlobRefused, QuotaExceeded) as e:
        raise _blob_errors(e) from None
    return web.json_response({row.hash: blob_doc(row)})


async def list_metadata(request: web.Request) -> web.Response:
    """Every blob this token sees, keyed by hash (WebGME lists only in debug mode)."""
    token_hash = await front_token(request)
    body = await request.app[BLOBS].listing(token_hash)
    return web.Response(body=body, content_type="application/json")


async def blob_metadata(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    row = await request.app[BLOBS].meta(token_hash, request.match_info["hash"])
    if row is None:
        raise ApiError(404, "not_found", "no such blob", "hash")
    return web.json_response(blob_doc(row))


async def _send_blob(request: web.Request, *, download: bool) -> web.Response:
    """A file, a file of an artifact (``/<subpath>``) or an artifact as a zip, typed by its
    name; an attachment when downloaded (or when its type is binary), as WebGME serves it."""
    token_hash = await front_token(request)
    path = request.match_info.get("path", "")
    try:
        got = await request.app[BLOBS].open(token_hash, request.match_info["hash"], path)
    except (BlobRefused, BlobTooLarge) as e:
        raise _blob_errors(e) from None
    if got is None:
        what = f"the blob has no file '{path}'" if path else "no such blob"
        raise ApiError(404, "not_found", what, "path" if path else "hash")
    mime = mime_type(got.name) or "application/octet-stream"
    headers = {}
    if download or mime in ("application/octet-stream", "application/zip"):
        headers["Content-Disposition"] = _content_disposition(got.name)
    return web.Response(body=got.data, content_type=mime, headers=headers)


async def blob_download(request: web.Request) -> web.Response:
    return await _send_blob(request, download=True)


async def blob_view(request: web.Request) -> web.Response:
    return await _send_blob(request, download=False)


# -- executor jobs -------------------------------------------------------------------------------


async def _job(request: web.Request, token_hash: str) -> JobRow:
    """The token's job named in the path; 404 for any job of another token."""
    job = await request.app[STORE].jobs.get_job(token_hash, request.match_info["hash"])
    if job is None:
        raise ApiError(404, "not_found", "no such job", "hash")
    return job


async def create_job(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    job_hash = request.match_info["hash"]
    try:
        job, _ = await request.app[EXECUTOR].create(job_hash, token_hash)
    except LookupError:
        raise ApiError(
            404, "not_found", "no blob with this hash; upload the job definition first", "hash"
        ) from None
    except executor.JobRefused as e:
        raise ApiError(400, "invalid_job", str(e), "hash") from None
    return web.json_response(executor.job_doc(job, with_id=False))


async def job_info(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    return web.json_response(executor.job_doc(await _job(request, token_hash)))


async def cancel_job(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    job = await request.app[EXECUTOR].cancel(await _job(request, token_hash))
    return web.json_response(executor.job_doc(job))


def _segment_bound(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid", f"'{name}' must be a segment number", name) from None
    return value if value >= 0 else None


async def job_output(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    job = await _job(request, token_hash)
    start, end = _segment_bound(request, "start"), _segment_bound(request, "end")
    return web.json_response(await request.app[EXECUTOR].outputs(job, start, end))


async def list_jobs(request: web.Request) -> web.Response:
    """The token's jobs keyed by hash, as WebGME's executor lists them."""
    token_hash = await front_token(request)
    status = request.query.get("status")
    if status is not None and status not in executor.WEBGME_STATUSES:
        known = ", ".join(executor.WEBGME_STATUSES)
        raise ApiError(400, "invalid", f"unknown status '{status}' (known: {known})", "status")
    jobs = await request.app[STORE].jobs.list_jobs(token_hash, status)
    return web.json_response({job.hash: executor.job_doc(job, with_id=False) for job in jobs})


async def list_workers(request: web.Request) -> web.Response:
    """WebGME's ``getWorkersInfo``: no external worker ever registers here (the judge's own
    sandboxes run the jobs), so the answer is always empty."""
    await front_token(request)
    return web.json_response({})


# -- exec ----------------------------------------------------------------------------------------


async def execute(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    if "X-Zerovm-Execute" not in request.headers:
        raise ApiError(
            400,
            "invalid",
            "this server only executes: send 'X-Zerovm-Execute: 1.0'",
            "X-Zerovm-Execute",
        )
    ctype = request.content_type
    body = await request.read()
    try:
        if ctype in _PYTHON_TYPES:
            mission, files = zerovm.script_mission(body)
        elif ctype in _TAR_TYPES:
            mission, files = await request.app[BLOBS].run(zerovm.image_mission, body)
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send application/python (a script) or application/x-tar (a ZeroVM image)",
                "Content-Type",
            )
    except zerovm.ExecRefused as e:
        raise ApiError(400, "invalid", str(e), "body") from None
    executes = mission["prepare"]["execute"]
    io = MissionIO(inputs=files, collect=[e["stdout"] for e in executes])
    started = time.perf_counter()
    mission_id = await _submit(request, token_hash, mission, io)
    row = await request.app[WORKERS].wait_finished(mission_id)
    total_s = time.perf_counter() - started
    if row is not None and row.state in ("queued", "running"):
        raise ApiError(
            503, "shutting_down", "the server stopped before the program ended; send it again"
        )
    if row is None or row.result is None:
        raise ApiError(500, "internal", f"the program could not be run: {row and row.error}")
    ran = row.result["prepare"]["execute"]
    # Outputs may be megabytes each: read out of their archives off the event loop.
    outputs = await asyncio.to_thread(
        lambda: [zerovm.read_stdout(io.collected.get(e["stdout"])) for e in executes]
    )
    headers = zerovm.nexe_headers(ran, outputs, total_s)
    return web.Response(body=b"".join(outputs), content_type="text/plain", headers=headers)


def setup_frontdoor_routes(app: web.Application) -> None:
    app.router.add_post("/rest/blob/createFile/{name}", create_file)
    app.router.add_post("/rest/blob/createMetadata", create_metadata)
    app.router.add_post("/rest/blob/createMetadata/", create_metadata)
    app.router.add_get("/rest/blob/metadata", list_metadata)
    app.router.add_get("/rest/blob/metadata/", list_metadata)
    app.router.add_get("/rest/blob/metadata/{hash}", blob_metadata)
    app.router.add_get("/rest/blob/download/{hash}", blob_download)
    app.router.add_get("/rest/blob/download/{hash}/{path:.*}", blob_download)
    app.router.add_get("/rest/blob/view/{hash}", blob_view)
    app.router.add_get("/rest/blob/view/{hash}/{path:.*}", blob_view)
    app.router.add_post("/rest/executor/create/{hash}", create_job)
    app.router.add_get("/rest/executor/info/{hash}", job_info)
    app.router.add_post("/rest/executor/cancel/{hash}", cancel_job)
    app.router.add_get("/rest/executor/output/{hash}", job_output)
    app.router.add_get("/rest/executor/worker", list_workers)
    app.router.add_get("/rest/executor/", list_jobs)
    app.router.add_get("/rest/executor", list_jobs)
    app.router.add_post("/v1/{account}", execute)


__all__ = ["setup_frontdoor_routes"]
