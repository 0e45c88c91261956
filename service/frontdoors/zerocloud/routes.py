"""HTTP handler of the ZeroCloud-style exec API (``POST /v1/{account}``): a script or a ZeroVM
image in, its nodes' stdout out. Thin: it authenticates, translates and hands over to the workers.

It takes a judge token as ``Authorization: Bearer``, ``X-Auth-Token`` or the ``token`` query
parameter; a request's answer goes only to the request that made it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from orchestrator.mission import MissionInvalid, MissionTooLarge, normalise, parse_mission
from orchestrator.mission.result import ENDED
from orchestrator.run.runner import MissionIO
from service.frontdoors.door import core_of
from service.frontdoors.zerocloud import execdoor
from service.http.auth import front_token
from service.http.errors import INVALID_MISSION, ApiError

_PYTHON_TYPES = ("application/python", "text/x-python", "application/x-python")


_TAR_TYPES = ("application/x-tar", "application/x-gtar", "application/tar")


async def _submit(
    request: web.Request, token_hash: str, mission: dict[str, Any], io: MissionIO
) -> int:
    try:
        caps = core_of(request).settings.mission_caps
        normalised = await asyncio.to_thread(lambda: normalise(parse_mission(mission, caps)))
    except MissionTooLarge as e:
        raise ApiError(413, "too_large", e.message, "body") from None
    except MissionInvalid as e:
        raise ApiError(400, INVALID_MISSION, e.message, "body") from None
    # QueueFull and ShuttingDown are answered by the error middleware's table.
    return await core_of(request).submit(
        token_hash, mission, kind=execdoor.KIND, io=io, normalised=normalised
    )


EXEC_OUTAGE_WAIT_S = 30.0
"""How long an exec request waits for an engine that stopped answering before it gives up."""


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
            mission, files = execdoor.script_mission(body)
        elif ctype in _TAR_TYPES:
            mission, files = await asyncio.to_thread(execdoor.image_mission, body)
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send application/python (a script) or application/x-tar (a ZeroVM image)",
                "Content-Type",
            )
    except execdoor.ExecRefused as e:
        raise ApiError(400, "invalid", str(e), "body") from None
    executes = mission["prepare"]["execute"]
    io = MissionIO(inputs=files, collect=[e["stdout"] for e in executes])
    started = time.perf_counter()
    mission_id = await _submit(request, token_hash, mission, io)
    # A synchronous request: while the engine is down it waits EXEC_OUTAGE_WAIT_S, then its
    # mission is cancelled and the answer is 503 with Retry-After.
    row = await core_of(request).wait_synchronously(mission_id, EXEC_OUTAGE_WAIT_S)
    total_s = time.perf_counter() - started
    if row is not None and row.state not in ENDED:
        raise ApiError(
            503, "shutting_down", "the server stopped before the program ended; send it again"
        )
    if row is None or row.result is None:
        raise ApiError(500, "internal", f"the program could not be run: {row and row.error}")
    ran = row.result["prepare"]["execute"]
    # Outputs may be megabytes each: read out of their archives off the event loop.
    outputs = await asyncio.to_thread(
        lambda: [execdoor.read_stdout(io.collected.get(e["stdout"])) for e in executes]
    )
    headers = execdoor.nexe_headers(ran, outputs, total_s)
    return web.Response(body=b"".join(outputs), content_type="text/plain", headers=headers)


def setup_zerocloud_routes(app: web.Application) -> None:
    """The route, on the door's sub-app mounted at ``/v1``."""
    app.router.add_post("/{account}", execute)


__all__ = ["setup_zerocloud_routes"]
