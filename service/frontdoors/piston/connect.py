"""Piston's interactive WebSocket, ``/api/v2/connect``: one job, run live.

The client sends ``{"type": "init", ...execute body}`` within a second (else close 4001), then
may send ``{"type": "data", "stream": "stdin", "data": ...}`` and ``{"type": "signal",
"signal": "SIGINT"}``. The server answers ``runtime`` (language, version), then per stage
``stage`` (compile, run), ``data`` (stdout/stderr as the program writes them) and ``exit``
(code, signal, and our ``status``/``message``), and closes with 4999 when the job is done.
Mistakes close the socket with Piston's codes: 4000 already initialized, 4002 an error (after an
``error`` message saying why), 4003 not yet initialized, 4004 only stdin can be written, 4005 an
invalid signal.

Unlike Piston, a signal really reaches the program (its process group), stdin sent while the
program is not running yet (during the compile) waits for the run, and the token may come in the
init message (``"token"``) as well as in the ``Authorization`` header (a browser cannot set
headers on a WebSocket), never in the URL. A compile goes through the compile cache that
``execute`` uses: the same tenant's same files compile once.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
from typing import Any, NoReturn

from aiohttp import WSMsgType, web

from orchestrator.errors import JudgeError
from orchestrator.sandbox.execute import ExecRequest
from service.frontdoors.piston.errors import PistonError
from service.frontdoors.piston.http import ANONYMOUS_TENANT, INLINE_BODY_BYTES, bearer_or_bare
from service.frontdoors.piston.live import SIGNALS, LiveBox, LiveRun, live_stages, pack, unpack
from service.frontdoors.piston.request import ExecuteJob, parse_execute
from service.frontdoors.piston.routes import PISTON, PistonState, compiled_box
from service.frontdoors.piston.stages import stage_doc, verdict
from service.frontdoors.piston.translate import compile_key
from service.http.errors import ApiError
from service.pipeline.compilecache import CompileCache, CompiledBox

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 1.0  # as Piston: no init within a second closes the socket (4001)
STDIN_BUFFER_BYTES = 1 << 20  # stdin the client may send ahead of what the program read


class Closed(Exception):
    """The socket was closed with a code; the session ends."""


class Session:
    """One WebSocket's job: its messages in, the program's output and stages out."""

    def __init__(self, ws: web.WebSocketResponse, state: PistonState, request: web.Request):
        self.ws = ws
        self.state = state
        self.request = request
        self.job: asyncio.Task[None] | None = None
        self.run: LiveRun | None = None
        self.stage = ""
        # Stdin from the client, fed to the run stage by a task of its own (so that a program
        # that does not read never blocks the socket: a signal still gets through); what comes
        # before the run waits here. At most STDIN_BUFFER_BYTES wait at once.
        self.stdin: asyncio.Queue[bytes] = asyncio.Queue()
        self.queued = 0
        self.drained = asyncio.Event()
        self.stdin_closed = False

    async def close(self, code: int, reason: str) -> NoReturn:
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode())
        raise Closed()

    async def error(self, message: str) -> NoReturn:
        """Piston's way to report a problem: an ``error`` message, then close 4002."""
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_json({"type": "error", "message": message})
        await self.close(4002, "Notified Error")

    async def send(self, doc: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_json(doc)

    # -- messages from the client --------------------------------------------------------------

    async def handle(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError as e:
            await self.error(f"the message is not JSON: {e}")
        if not isinstance(msg, dict):
            await self.error("a message must be a JSON object")
        kind = msg.get("type")
        if kind == "init":
            if self.job is not None:
                await self.close(4000, "Already Initialized")
            await self.init(msg, len(text))
        elif kind == "data":
            if self.job is None:
                await self.close(4003, "Not yet initialized")
            if msg.get("stream") != "stdin":
                await self.close(4004, "Can only write to stdin")
            data = msg.get("data")
            if not isinstance(data, str):
                await self.error("data must be a string")
            await self.write(data.encode("utf-8", "surrogatepass"))
        elif kind == "signal":
            if self.job is None:
                await self.close(4003, "Not yet initialized")
            name = msg.get("signal")
            number = SIGNALS.get(name) if isinstance(name, str) else None
            if number is None:
                await self.close(4005, "Invalid signal")
            if self.run is not None:
                await self.run.signal(number)
        # Any other type is ignored, as Piston ignores it.

    async def write(self, data: bytes) -> None:
        """Stdin for the program, queued for the run stage (kept while the compile runs).
        Beyond :data:`STDIN_BUFFER_BYTES` waiting, the client waits for the program to read
        (before the run, it is an error: nothing reads yet)."""
        while self.queued + len(data) > STDIN_BUFFER_BYTES and self.queued:
            if self.stage != "run":
                await self.error(
                    f"at most {STDIN_BUFFER_BYTES} bytes of stdin may wait for the program"
                )
            self.drained.clear()
            await self.drained.wait()
        self.queued += len(data)
        self.stdin.put_nowait(data)

    async def feed(self, run: LiveRun) -> None:
        """Write the queued stdin to the running program, as it reads it."""
        while True:
            data = await self.stdin.get()
            await run.write_stdin(data)
            self.queued -= len(data)
            self.drained.set()

    async def init(self, msg: dict[str, Any], size: int) -> None:
        """Check the init (``size``: its text's length) and start the job."""
        state = self.state
        try:
            tenant = await self.admit(msg.get("token"))
            runtimes = await state.core.runtimes()
            if size > INLINE_BODY_BYTES:
                job = await asyncio.to_thread(parse_execute, msg, runtimes, state.settings)
            else:
                job = parse_execute(msg, runtimes, state.settings)
        except (PistonError, ApiError) as e:
            await self.error(e.message)
        self.job = asyncio.create_task(self.execute(job, tenant), name="piston-connect")

    async def admit(self, token: object) -> str:
        """The tenant: the init's ``token``, else the ``Authorization`` header, else (when
        allowed) the anonymous tenant; counted against the rate limits."""
        state = self.state
        if token is not None and not isinstance(token, str):
            raise PistonError(400, "token must be a string")
        given = token or bearer_or_bare(self.request.headers.get("Authorization", ""))
        if given:
            tenant = await state.core.token_hash(given)
            if tenant is None:
                raise PistonError(401, "unknown or revoked token")
            state.core.take(tenant)
            return tenant
        if not state.settings.anonymous:
            raise PistonError(401, "a token is required: send it in init as 'token'")
        state.anonymous_limiter.take(f"address:{self.request.remote or 'unknown'}")
        return ANONYMOUS_TENANT

    # -- the job -------------------------------------------------------------------------------

    async def execute(self, job: ExecuteJob, tenant: str) -> None:
        """Run the job's stages live, then close 4999; an error is reported and closes 4002."""
        try:
            try:
                async with asyncio.timeout(self.state.settings.queue_wait_s):
                    await self.state.live_slots.acquire()
            except TimeoutError:
                await self.error("the judge is busy; retry later")
            self.state.live_running += 1
            try:
                await self.stages(job, tenant)
            finally:
                self.state.live_running -= 1
                self.state.live_slots.release()
            await self.close(4999, "Job Completed")
        except (Closed, ConnectionError):
            pass  # closed by us, or the client went away mid-message
        except (JudgeError, ValueError) as e:
            log.info("piston connect: the job could not be run: %s", e)
            with contextlib.suppress(Closed):
                await self.error(f"the judge could not run the program: {e}")

    async def stages(self, job: ExecuteJob, tenant: str) -> None:
        state = self.state
        await self.send(
            {"type": "runtime", "language": job.runtime.language, "version": job.runtime.version}
        )
        stages = live_stages(job, state.settings)
        memory_kib = max(req.memory_kib for _, req in stages)
        async with state.core.sandbox(job.runtime.image, memory_kib) as box:
            await box.put_files({f.name: f.data for f in job.files})
            if job.stdin:
                await self.write(job.stdin.encode())
            for name, req in stages:
                self.stage = name
                if name == "compile":
                    if not await self.compile(box, job, req, tenant):
                        return  # a failed compile: Piston runs nothing more
                    continue
                await self.live(box, name, req)

    async def live(
        self, box: LiveBox, name: str, req: ExecRequest, keep: int = 0
    ) -> tuple[dict[str, Any], bytes, bytes]:
        """Run one stage live: ``stage``, its output as ``data``, then ``exit``. Returns the
        stage's meta and the first ``keep`` bytes of its stdout and stderr."""
        await self.send({"type": "stage", "stage": name})
        async with box.stream(req) as run:
            self.run = run
            feeder = asyncio.create_task(self.feed(run)) if name == "run" else None
            try:
                kept = await self.relay(run, keep)
                outcome = await run.result()
            finally:
                self.run = None
                if feeder is not None:
                    feeder.cancel()
                    await asyncio.gather(feeder, return_exceptions=True)
        meta = outcome.meta.to_dict()
        over = meta.get("status") == "OLE"
        out_over = over and run.stdout_bytes >= run.stderr_bytes
        status, code, sig, message = verdict(meta, out_over, over and not out_over)
        await self.exited(name, code, sig, status, message)
        return meta, kept["stdout"], kept["stderr"]

    async def exited(
        self, stage: str, code: int | None, sig: str | None, status: str | None, message: str | None
    ) -> None:
        await self.send(
            {
                "type": "exit",
                "stage": stage,
                "code": code,
                "signal": sig,
                "status": status,
                "message": message,
            }
        )

    async def compile(self, box: LiveBox, job: ExecuteJob, req: ExecRequest, tenant: str) -> bool:
        """The compile stage through the compile cache shared with ``execute`` (and Judge0's):
        the same tenant's same files compile once. A hit replays the compile's stage (its
        output as Piston's answer keeps it, capped at ``output_max_size`` characters per
        stream) and unpacks the compiled box; a miss compiles live, then packs the box for the
        next ones. Whether the compile succeeded."""
        state = self.state
        cache = state.cache
        parts = compile_key(job)
        if cache is None or not parts:
            meta, _, _ = await self.live(box, "compile", req)
            return verdict(meta, False, False)[1] == 0
        key = CompileCache.key(tenant, *parts)
        cached = await cache.claim(key, req.answer_within_s + state.settings.queue_wait_s)
        if cached is not None:
            return await self.replay(box, cached)
        cap = state.settings.output_max_size
        keep = (cap + 1) * 4  # enough bytes to tell whether a stream has more than cap
        kept = False
        try:
            meta, out, err = await self.live(box, "compile", req, keep)
            doc = stage_doc({"meta": meta}, out, err, cap, keep)
            if doc["code"] == 0:
                try:
                    packed = await pack(box)
                except (JudgeError, ValueError) as e:  # the job goes on, uncached
                    log.info("piston connect: the compiled box could not be kept: %s", e)
                    packed = b""
                if packed:
                    output = json.dumps(doc).encode()
                    cache.put(key, await asyncio.to_thread(compiled_box, output, packed))
                    kept = True
            elif doc["status"] == "RE":  # a clean failure (not a time limit or the judge's)
                cache.put(key, CompiledBox(ok=False, output=json.dumps(doc).encode(), box=b""))
                kept = True
            return bool(doc["code"] == 0)
        finally:
            if not kept:
                cache.abandon(key)

    async def replay(self, box: LiveBox, cached: CompiledBox) -> bool:
        """A cached compile as its stage (stdout, then stderr), then its box unpacked."""
        doc = json.loads(cached.output or b"{}")
        await self.send({"type": "stage", "stage": "compile"})
        for stream in ("stdout", "stderr"):
            if doc.get(stream):
                await self.send({"type": "data", "stream": stream, "data": doc[stream]})
        await self.exited(
            "compile", doc.get("code"), doc.get("signal"), doc.get("status"), doc.get("message")
        )
        if not cached.ok:
            return False
        if cached.vetted:  # placed by the supervisor, no execute (see routes.compiled_box)
            await box.put_archive("", cached.box)
        else:
            await unpack(box, cached.box)
        return True

    async def relay(self, run: LiveRun, keep: int = 0) -> dict[str, bytes]:
        """The program's output to the client as it comes, whole characters per message; the
        first ``keep`` bytes of each stream."""
        decoders = {
            s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")
        }
        kept = {"stdout": bytearray(), "stderr": bytearray()}
        async for stream, chunk in run:
            if len(kept[stream]) < keep:
                kept[stream] += chunk[: keep - len(kept[stream])]
            text = decoders[stream].decode(chunk)
            if text:
                await self.send({"type": "data", "stream": stream, "data": text})
        for stream, decoder in decoders.items():
            text = decoder.decode(b"", final=True)
            if text:
                await self.send({"type": "data", "stream": stream, "data": text})
        return {stream: bytes(data) for stream, data in kept.items()}


async def connect(request: web.Request) -> web.WebSocketResponse:
    """``GET connect``: Piston's interactive protocol over aiohttp's WebSocket."""
    state = request.app[PISTON]
    ws = web.WebSocketResponse(max_msg_size=state.core.max_body_bytes)
    await ws.prepare(request)
    session = Session(ws, state, request)
    deadline = asyncio.get_running_loop().time() + INIT_TIMEOUT_S
    try:
        while True:
            # Until a job is initialized, messages must come before the deadline (as Piston's
            # one-second timer); then the socket stays open as long as the job runs.
            wait = None
            if session.job is None:
                # (aiohttp reads a timeout of 0 as none at all)
                wait = max(0.001, deadline - asyncio.get_running_loop().time())
            try:
                msg = await ws.receive(timeout=wait)
            except TimeoutError:
                await session.close(4001, "Initialization Timeout")
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            text = msg.data if msg.type == WSMsgType.TEXT else msg.data.decode("utf-8", "replace")
            await session.handle(text)
    except Closed:
        pass
    finally:
        if session.job is not None and not session.job.done():
            if ws.closed:
                session.job.cancel()  # the client went away: the program is killed
            with contextlib.suppress(asyncio.CancelledError, Closed):
                await session.job
    return ws


__all__ = ["INIT_TIMEOUT_S", "connect"]
