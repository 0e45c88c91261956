"""HTTP handlers of the WebGME-style door: blobs and the executor API (``/rest/...``). Thin: they
authenticate, translate and hand over to the blob store, the executor door and the workers.

They take a judge token as ``Authorization: Bearer``, ``X-Auth-Token`` or the ``token`` query
parameter. Blobs and executor jobs belong to the tokens that made them: any other token gets 404
as if they did not exist (storage is still shared by content).
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from service.frontdoors.webgme import executor
from service.frontdoors.webgme.blobs import (
    BlobRefused,
    BlobTooLarge,
    QuotaExceeded,
    blob_doc,
    parse_metadata,
)
from service.frontdoors.webgme.keys import BLOBS, EXECUTOR, REPO
from service.frontdoors.webgme.mimes import mime_type
from service.frontdoors.webgme.tables import JobRow
from service.http.auth import front_token
from service.http.errors import ApiError

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
        row = await request.config_dict[BLOBS].put_file(token_hash, name, data)
    except QuotaExceeded as e:
        raise _blob_errors(e) from None
    return web.json_response({row.hash: blob_doc(row)})


async def create_metadata(request: web.Request) -> web.Response:
    """WebGME's ``putMetadata`` (``Artifact.save``): a complex artifact of stored files."""
    token_hash = await front_token(request)
    raw = await request.read()
    try:
        doc, refs = await request.config_dict[BLOBS].run(parse_metadata, raw)
        row = await request.config_dict[BLOBS].put_metadata(token_hash, doc, refs)
    except (BlobRefused, QuotaExceeded) as e:
        raise _blob_errors(e) from None
    return web.json_response({row.hash: blob_doc(row)})


async def list_metadata(request: web.Request) -> web.Response:
    """Every blob this token sees, keyed by hash (WebGME lists only in debug mode)."""
    token_hash = await front_token(request)
    body = await request.config_dict[BLOBS].listing(token_hash)
    return web.Response(body=body, content_type="application/json")


async def blob_metadata(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    row = await request.config_dict[BLOBS].meta(token_hash, request.match_info["hash"])
    if row is None:
        raise ApiError(404, "not_found", "no such blob", "hash")
    return web.json_response(blob_doc(row))


async def _send_blob(request: web.Request, *, download: bool) -> web.Response:
    """A file, a file of an artifact (``/<subpath>``) or an artifact as a zip, typed by its
    name; an attachment when downloaded (or when its type is binary), as WebGME serves it."""
    token_hash = await front_token(request)
    path = request.match_info.get("path", "")
    try:
        got = await request.config_dict[BLOBS].open(token_hash, request.match_info["hash"], path)
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
    job = await request.config_dict[REPO].get_job(token_hash, request.match_info["hash"])
    if job is None:
        raise ApiError(404, "not_found", "no such job", "hash")
    return job


async def create_job(request: web.Request) -> web.Response:
    token_hash = await front_token(request)
    job_hash = request.match_info["hash"]
    try:
        job, _ = await request.config_dict[EXECUTOR].create(job_hash, token_hash)
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
    job = await request.config_dict[EXECUTOR].cancel(await _job(request, token_hash))
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
    return web.json_response(await request.config_dict[EXECUTOR].outputs(job, start, end))


async def list_jobs(request: web.Request) -> web.Response:
    """The token's jobs keyed by hash, as WebGME's executor lists them."""
    token_hash = await front_token(request)
    status = request.query.get("status")
    if status is not None and status not in executor.WEBGME_STATUSES:
        known = ", ".join(executor.WEBGME_STATUSES)
        raise ApiError(400, "invalid", f"unknown status '{status}' (known: {known})", "status")
    jobs = await request.config_dict[REPO].list_jobs(token_hash, status)
    return web.json_response({job.hash: executor.job_doc(job, with_id=False) for job in jobs})


async def list_workers(request: web.Request) -> web.Response:
    """WebGME's ``getWorkersInfo``: no external worker ever registers here (the judge's own
    sandboxes run the jobs), so the answer is always empty."""
    await front_token(request)
    return web.json_response({})


def setup_webgme_routes(app: web.Application) -> None:
    """The routes, on the door's sub-app mounted at ``/rest``."""
    app.router.add_post("/blob/createFile/{name}", create_file)
    app.router.add_post("/blob/createMetadata", create_metadata)
    app.router.add_post("/blob/createMetadata/", create_metadata)
    app.router.add_get("/blob/metadata", list_metadata)
    app.router.add_get("/blob/metadata/", list_metadata)
    app.router.add_get("/blob/metadata/{hash}", blob_metadata)
    app.router.add_get("/blob/download/{hash}", blob_download)
    app.router.add_get("/blob/download/{hash}/{path:.*}", blob_download)
    app.router.add_get("/blob/view/{hash}", blob_view)
    app.router.add_get("/blob/view/{hash}/{path:.*}", blob_view)
    app.router.add_post("/executor/create/{hash}", create_job)
    app.router.add_get("/executor/info/{hash}", job_info)
    app.router.add_post("/executor/cancel/{hash}", cancel_job)
    app.router.add_get("/executor/output/{hash}", job_output)
    app.router.add_get("/executor/worker", list_workers)
    app.router.add_get("/executor/", list_jobs)
    app.router.add_get("/executor", list_jobs)


__all__ = ["setup_webgme_routes"]
