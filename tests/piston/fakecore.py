"""A core for the Piston door's HTTP tests: it records missions and ends them as told.

Fine for the protocol (routes, errors, auth, waiting); never for a claim about sandboxes, which
the tests against the real engine make.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from orchestrator.run.runner import MissionIO
from orchestrator.sandbox.tar import build_tar
from service.frontdoors.piston.frontdoor import PistonDoor
from service.frontdoors.piston.runtimes import PistonRuntime
from service.frontdoors.piston.settings import PistonSettings
from service.frontdoors.piston.translate import ARTIFACT
from service.http.ratelimit import RateLimiter
from service.store import MissionRow
from tests.piston.fixtures import RUNTIMES

TOKEN = "secret-token"

Script = Callable[[dict[str, Any], MissionIO], dict[str, Any] | None]


def meta(**changes: Any) -> dict[str, Any]:
    doc = {
        "status": "",
        "message": "",
        "memory-usage": 1000,
        "cpu-time-usage": 12,
        "real-time-usage": 20,
        "exit-code": 0,
        "signal": 0,
    }
    doc.update(changes)
    return doc


def entry(m: dict[str, Any] | None = None, out: bytes = b"", err: bytes = b"") -> dict[str, Any]:
    return {
        "meta": m or meta(),
        "record": {
            "stdout": base64.b64encode(out).decode(),
            "stderr": base64.b64encode(err).decode(),
        },
    }


def echo_stdin(mission: dict[str, Any], io: MissionIO) -> dict[str, Any]:
    """Every execute succeeds; the run prints its stdin and its argv; a pack leaves a compiled
    box to read back."""
    executes = mission["prepare"]["execute"]
    if any(ex["name"] == "pack" for ex in executes):
        io.collected[ARTIFACT] = build_tar({"artifact.tar": b"compiled box"})
    stdin = io.inputs.get(executes[-1]["stdin"], b"")
    entries = [entry() for _ in executes[:-1]]
    argv = " ".join(executes[-1]["command"]).encode()
    entries.append(entry(out=stdin + argv))
    return {"prepare": {"execute": entries}}


class FakeCore:
    """``PistonCore`` over memory: ``script`` gives each mission's result (None: it never
    ends)."""

    def __init__(self, script: Script = echo_stdin, rate_limit: int = 0) -> None:
        self.script = script
        self.missions: list[tuple[str, dict[str, Any], MissionIO]] = []
        self.cancelled: list[int] = []
        self.limiter = RateLimiter(rate_limit)
        self.runtime_list: Sequence[PistonRuntime] = RUNTIMES
        self._ended: dict[int, asyncio.Event] = {}
        self.max_body_bytes = 1 << 20

    async def token_hash(self, token: str) -> str | None:
        return "hash-of-" + token if token == TOKEN else None

    def take(self, token_hash: str) -> dict[str, str]:
        return self.limiter.take(token_hash)

    async def submit(self, tenant: str, mission: dict[str, Any], io: MissionIO) -> int:
        self.missions.append((tenant, mission, io))
        return len(self.missions)

    async def cancel(self, mission_id: int) -> None:
        self.cancelled.append(mission_id)

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        tenant, mission, io = self.missions[mission_id - 1]
        result = self.script(mission, io)
        if result is None:
            await asyncio.Event().wait()  # never ends
        return MissionRow(
            id=mission_id,
            token_hash=tenant,
            state="done",
            mission=mission,
            normalised=mission,
            result=result,
            error="",
            created_at=0.0,
            updated_at=0.0,
            runs=1,
            delivery_id="",
            callback_state="none",
            callback_attempts=0,
            callback_error="",
            kind="piston",
        )

    async def runtimes(self) -> Sequence[PistonRuntime]:
        return self.runtime_list

    async def packages(self) -> Sequence[dict[str, Any]]:
        return [{"language": "python", "language_version": "3.11.2", "installed": True}]


def app_with(core: FakeCore, **settings: Any) -> web.Application:
    """A root app with the door's sub-app (and its WebSocket) mounted where the judge mounts
    it."""
    root = web.Application(client_max_size=core.max_body_bytes)
    door = PistonDoor()
    config = PistonSettings(_env_file=None, **settings)  # type: ignore[call-arg]
    sub = door.sub_app(config, core)
    root.add_subapp("/api/v2", sub)
    return root


class FakeRun:
    """A streaming execute over memory: a "program" that upper-cases each stdin line it reads
    until ``quit``; a compile (argv[0] ``gcc``) that fails when the source holds ``error``.
    Signals end it as the signal would."""

    def __init__(self, argv: tuple[str, ...], files: dict[str, bytes]) -> None:
        self.argv = argv
        self.files = files
        self.output: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self.stdin: list[bytes] = []
        self.signals: list[int] = []
        self.meta = meta()
        self.ended = asyncio.Event()
        self.stdout_bytes = 0
        self.stderr_bytes = 0
        self.deaf = False
        self._line = b""
        if argv[0] == "gcc":
            source = next(iter(files.values()), b"")
            if b"error" in source:
                self._emit("stderr", b"main.c:1: error: expected ';'\n")
                self._end(meta(status="RE", **{"exit-code": 1}))
            elif b"slow" in source:  # a compile that runs until it is killed
                self._emit("stderr", b"compiling...\n")
            else:
                self._emit("stderr", "warning: é\n".encode())
                self._end(meta())
        else:
            self._emit("stdout", b"ready\n")

    def _emit(self, stream: str, data: bytes) -> None:
        if stream == "stdout":
            self.stdout_bytes += len(data)
        else:
            self.stderr_bytes += len(data)
        self.output.put_nowait((stream, data))

    def _end(self, m: dict[str, Any]) -> None:
        if not self.ended.is_set():
            self.meta = m
            self.ended.set()
            self.output.put_nowait(None)

    async def write_stdin(self, data: bytes) -> None:
        if self.ended.is_set():
            return
        if self.deaf:  # a program that never reads its stdin: the write waits until it ends
            await self.ended.wait()
            return
        self.stdin.append(data)
        self._line += data
        while b"\n" in self._line:
            line, self._line = self._line.split(b"\n", 1)
            if line == b"quit":
                self._end(meta())
                return
            # A character split across two chunks arrives whole (the door decodes per stream).
            upper = line.decode().upper().encode() + b"\n"
            self._emit("stdout", upper[:1])
            self._emit("stdout", upper[1:])

    async def close_stdin(self) -> None:
        self._end(meta())

    async def signal(self, number: int) -> None:
        self.signals.append(number)
        self._end(meta(status="RE", signal=number, message=f"killed by signal {number}"))

    def __aiter__(self) -> Any:
        return self._chunks()

    async def _chunks(self) -> Any:
        while (item := await self.output.get()) is not None:
            yield item

    async def result(self) -> Any:
        from orchestrator.sandbox.sandbox import ExecOutcome, Meta

        await self.ended.wait()
        return ExecOutcome(Meta.from_wire(self.meta))


class FakeBox:
    """A sandbox over memory for the live protocol: files in, ``FakeRun`` streams."""

    def __init__(self, deaf: bool = False) -> None:
        self.files: dict[str, bytes] = {}
        self.runs: list[FakeRun] = []
        self.ran: list[tuple[str, ...]] = []  # plain executes (the compiled box's tar)
        self.closed = False
        self.deaf = deaf

    async def put_files(self, files: Any) -> None:
        self.files.update(files)

    async def run(self, req: Any) -> Any:
        """``tar`` as the door packs and unpacks a compiled box: the files as one blob."""
        from orchestrator.sandbox.sandbox import ExecOutcome, Meta

        self.ran.append(tuple(req.argv))
        if req.argv[:2] == ("tar", "-cf"):
            kept = {k: v for k, v in self.files.items() if not k.startswith(".piston/")}
            self.files[req.argv[2]] = json.dumps({k: v.hex() for k, v in kept.items()}).encode()
        elif req.argv[:2] == ("tar", "-xf"):
            packed = json.loads(self.files[req.argv[2]])
            self.files.update({k: bytes.fromhex(v) for k, v in packed.items()})
        return ExecOutcome(Meta())

    async def get_archive(self, path: str, **_: Any) -> bytes:

        return build_tar({path.rsplit("/", 1)[-1]: self.files[path]})

    @contextlib.asynccontextmanager
    async def stream(self, req: Any) -> Any:
        run = FakeRun(req.argv, self.files)
        run.deaf = self.deaf
        self.runs.append(run)
        try:
            yield run
        finally:
            run._end(meta(status="RE", signal=9))  # leaving early kills the program


class LiveCore(FakeCore):
    """``FakeCore`` whose sandboxes are ``FakeBox`` es (kept in ``boxes``)."""

    def __init__(self, deaf: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.boxes: list[FakeBox] = []
        self.deaf = deaf

    @contextlib.asynccontextmanager
    async def sandbox(self, image: str, memory_kib: int) -> Any:
        box = FakeBox(self.deaf)
        self.boxes.append(box)
        try:
            yield box
        finally:
            box.closed = True
