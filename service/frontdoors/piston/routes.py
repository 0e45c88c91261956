"""Piston's REST routes: ``runtimes``, ``execute``, ``packages``, under ``/api/v2/`` and
``/api/v2/piston/`` (the public instance's prefix), each with or without a trailing slash.

``execute`` is synchronous, as in Piston: the request becomes one mission (compile, run) and the
answer waits for it. The wait is bounded by the request's own limits plus
``JUDGE_PISTON_QUEUE_WAIT_S``; past that (an engine outage, a long queue) the mission is
cancelled, so nothing runs later for nobody, and the answer is 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from orchestrator.errors import TransferRefused
from orchestrator.run.runner import MissionIO
from orchestrator.sandbox.tar import vet_archive
from service.frontdoors.piston.core import PistonCore
from service.frontdoors.piston.errors import PistonError
from service.frontdoors.piston.http import (
    ANONYMOUS_TENANT,
    INLINE_BODY_BYTES,
    bearer_or_bare,
    decode_json,
)
from service.frontdoors.piston.request import ExecuteJob, parse_execute
from service.frontdoors.piston.settings import PistonSettings
from service.frontdoors.piston.stages import answer_of, piston_answer, read_collected
from service.frontdoors.piston.translate import (
    ARTIFACT,
    ARTIFACT_MAX_KIB,
    MissionPlan,
    compile_key,
    mission_plan,
    wall_budget_s,
)
from service.http.ratelimit import RateLimiter
from service.pipeline.compilecache import CompileCache, CompiledBox

T = TypeVar("T")

RETRY_AFTER_S = 10
CLIENT_CHECK_S = 1.0  # how often a waiting execute looks whether its client is still there
BUILD_AN_IMAGE = (
    "packages are sandbox images on this server: an operator adds a language by building an "
    "image that declares it (images/README.md; 'make image NAME=<name>'), not through the API"
)


class PistonState:
    """The door's state on its sub-application: settings, the core, the anonymous limiter."""

    def __init__(self, settings: PistonSettings, core: Callable[[], PistonCore]) -> None:
        self.settings = settings
        self._core = core
        self.anonymous_limiter = RateLimiter(settings.anonymous_rate_limit)
        self.live_slots = asyncio.Semaphore(settings.max_live)
        self.live_running = 0  # interactive jobs holding a slot (for metrics)
        self.cache: CompileCache | None = None
        if settings.compile_cache_bytes:
            self.cache = CompileCache(
                max_bytes=settings.compile_cache_bytes,
                max_entry_bytes=min(settings.compile_cache_bytes, ARTIFACT_MAX_KIB * 1024),
                ttl_s=settings.compile_cache_ttl_s,
            )

    @property
    def core(self) -> PistonCore:
        return self._core()

    async def admit(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """``(tenant, rate-limit headers)`` of a request: a judge token as ``Bearer`` or the
        bare ``Authorization`` value, or (when anonymous use is on and no header is sent) the
        anonymous tenant, limited per client address. Raises 401 or 429."""
        header = request.headers.get("Authorization", "")
        if header.strip():
            tenant = await self.core.token_hash(bearer_or_bare(header))
            if tenant is None:
                raise PistonError(
                    401,
                    "unknown or revoked token",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return tenant, self.core.take(tenant)
        if not self.settings.anonymous:
            raise PistonError(
                401,
                "a token is required: send 'Authorization: Bearer <token>' or the token alone",
                {"WWW-Authenticate": "Bearer"},
            )
        address = request.remote or "unknown"
        return ANONYMOUS_TENANT, self.anonymous_limiter.take(f"address:{address}")


PISTON = web.AppKey("piston", PistonState)


async def _sized(work: Callable[..., T], size: int, *args: Any) -> T:
    """``work(*args)`` on the loop for a small body, in a thread for a large one."""
    if size <= INLINE_BODY_BYTES:
        return work(*args)
    return await asyncio.to_thread(work, *args)


async def read_job(request: web.Request, state: PistonState) -> ExecuteJob:
    """The checked job of an execute body (any Content-Type: npm piston-client sends none)."""
    raw = await request.read()
    body = await _sized(decode_json, len(raw), raw)
    runtimes = await state.core.runtimes()
    return await _sized(parse_execute, len(raw), body, runtimes, state.settings)


async def run_job(
    state: PistonState, tenant: str, job: ExecuteJob, gone: Callable[[], bool] = lambda: False
) -> dict[str, Any]:
    """Run ``job`` as one mission and answer Piston's result; raises 503 when it cannot end
    within its own limits plus the queue allowance (the mission is cancelled then).

    A compiled language asks the compile cache first: the same tenant's same files compile
    once; later executes unpack the compiled box (or, when compiling failed, are answered the
    failure at once without running anything)."""
    settings = state.settings
    parts = compile_key(job)
    if state.cache is None or not parts:
        plan = mission_plan(job, settings)
        result, io = await run_mission(state, tenant, plan, gone)
        return await _answer(job, plan, result, io, settings.output_max_size)
    key = CompileCache.key(tenant, *parts)
    wait_s = wall_budget_s(mission_plan(job, settings)) + settings.queue_wait_s
    cached = await state.cache.claim(key, wait_s)
    if cached is None:
        return await _compile_and_keep(state, tenant, job, key, gone)
    compiled = json.loads(cached.output or b"{}")
    if not cached.ok:
        return answer_of(job, compiled, compiled)
    plan = mission_plan(job, settings, artifact=cached.box, vetted=cached.vetted)
    result, io = await run_mission(state, tenant, plan, gone)
    return await _answer(job, plan, result, io, settings.output_max_size, compiled)


async def _compile_and_keep(
    state: PistonState, tenant: str, job: ExecuteJob, key: str, gone: Callable[[], bool]
) -> dict[str, Any]:
    """Compile (this caller claimed ``key``), run, and keep the compiled box for the next
    executes: a clean failure is kept too (answered at once next time); a compile that timed
    out or could not be run is not."""
    assert state.cache is not None
    kept = False
    try:
        plan = mission_plan(job, state.settings, pack=True)
        result, io = await run_mission(state, tenant, plan, gone)
        answer = await _answer(job, plan, result, io, state.settings.output_max_size)
        stage = answer["compile"]
        output = json.dumps(stage).encode()
        if stage["code"] == 0:
            box = read_collected(io.collected.get(ARTIFACT))
            if box:
                state.cache.put(key, await asyncio.to_thread(compiled_box, output, box))
                kept = True
        elif stage["status"] == "RE":
            state.cache.put(key, CompiledBox(ok=False, output=output, box=b""))
            kept = True
        return answer
    finally:
        if not kept:
            state.cache.abandon(key)


def compiled_box(output: bytes, box: bytes) -> CompiledBox:
    """The cache entry of a compile that succeeded: its box vetted (the next sandboxes are
    handed it with no execute to unpack it), or as it came when vetting refuses it (a link the
    compile made: ``tar`` unpacks it inside the sandbox instead, as it did before)."""
    try:
        vetted = vet_archive(
            box, "the compiled box", max_file_bytes=ARTIFACT_MAX_KIB * 1024, skip_root=True
        )
    except TransferRefused:
        return CompiledBox(ok=True, output=output, box=box)
    return CompiledBox(ok=True, output=output, box=vetted, vetted=True)


async def run_mission(
    state: PistonState, tenant: str, plan: MissionPlan, gone: Callable[[], bool] = lambda: False
) -> tuple[dict[str, Any], MissionIO]:
    """Submit the plan's mission and wait for its result; raises 503 (and cancels it) when it
    does not end within the plan's limits plus the queue allowance. ``gone`` tells whether the
    client went away (checked every ``CLIENT_CHECK_S``): its mission is cancelled then."""
    io = MissionIO(inputs=plan.inputs, collect=plan.collect, archive=plan.archive)
    core = state.core
    mission_id = await core.submit(tenant, plan.mission, io)
    deadline = time.monotonic() + wall_budget_s(plan) + state.settings.queue_wait_s
    waiting = asyncio.ensure_future(core.wait_finished(mission_id))
    try:
        while not waiting.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or gone():
                break
            await asyncio.wait({waiting}, timeout=min(remaining, CLIENT_CHECK_S))
    except asyncio.CancelledError:
        # The server stops (or the handler was cancelled): nothing may run later for nobody.
        waiting.cancel()
        with contextlib.suppress(Exception):
            await asyncio.shield(core.cancel(mission_id))
        raise
    if not waiting.done():
        waiting.cancel()
        await core.cancel(mission_id)
        raise PistonError(
            503,
            "the program could not be run in time (the judge is busy or its engine is "
            "unavailable); retry later",
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    row = waiting.result()
    if row is None or row.state != "done" or row.result is None:
        why = (row.error if row is not None else "") or (row.state if row else "missing")
        raise PistonError(
            503,
            f"the program could not be run ({why}); retry later",
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    return row.result, io


async def _answer(
    job: ExecuteJob,
    plan: MissionPlan,
    result: dict[str, Any],
    io: MissionIO,
    cap: int,
    compiled: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if plan.collect:  # outputs read back as files: up to megabytes to decode
        return await asyncio.to_thread(
            piston_answer, job, plan, result, io.collected, cap, compiled
        )
    return piston_answer(job, plan, result, io.collected, cap, compiled)


def client_gone(request: web.Request) -> bool:
    """Whether the client closed its connection (the server does not cancel handlers)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def json_response(body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), content_type="application/json", headers=headers)


async def execute(request: web.Request) -> web.Response:
    state = request.app[PISTON]
    tenant, headers = await state.admit(request)
    job = await read_job(request, state)
    return json_response(await run_job(state, tenant, job, lambda: client_gone(request)), headers)


async def runtimes(request: web.Request) -> web.Response:
    """Piston's runtime list: no token needed, as on Piston."""
    listed = await request.app[PISTON].core.runtimes()
    return json_response([rt.listing() for rt in listed])


async def packages(request: web.Request) -> web.Response:
    return json_response(list(await request.app[PISTON].core.packages()))


async def install(request: web.Request) -> web.Response:
    """Installing or removing a package through the API: images are built by an operator."""
    await request.app[PISTON].admit(request)
    raise PistonError(405, BUILD_AN_IMAGE, {"Allow": "GET, HEAD"})


async def not_found(request: web.Request) -> web.Response:
    raise PistonError(404, "Not Found")


def add_routes(app: web.Application, connect: Callable[[web.Request], Any]) -> None:
    """Every route under both prefixes, with and without a trailing slash, then Piston's 404
    for anything else (a wrong method included, as Express answers)."""
    for prefix in ("", "/piston"):
        for slash in ("", "/"):
            base = f"{prefix}/"
            app.router.add_get(f"{base}runtimes{slash}", runtimes)
            app.router.add_post(f"{base}execute{slash}", execute)
            app.router.add_get(f"{base}packages{slash}", packages)
            app.router.add_post(f"{base}packages{slash}", install)
            app.router.add_delete(f"{base}packages{slash}", install)
            app.router.add_get(f"{base}connect{slash}", connect)
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        app.router.add_route(method, "/{tail:.*}", not_found)


__all__ = ["PISTON", "PistonState", "add_routes", "read_job", "run_job"]
