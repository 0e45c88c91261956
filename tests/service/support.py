"""Test doubles that are real servers: a callback receiver, the judge in-process or as a process.

Nothing here sleeps to synchronise: callbacks arrive on an ``asyncio.Queue`` awaited with a
deadline, a server process is ready when it logs its address, and the few conditions only the API
can show (a mission is running) are polled with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from pydantic_settings import BaseSettings

from service.app import create_app
from service.keys import STORE
from service.settings import Settings

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789"


def hello_world(url: str, **extra: Any) -> dict[str, Any]:
    """The reference hello-world mission, with ``extra`` keys of ``return`` (payload, format)."""
    return {
        "return": {"url": url, **extra},
        "prepare": {"execute": [{"command": ["echo", "hello world"], "stdout": "output.txt"}]},
    }


def sleeper(url: str, seconds: float) -> dict[str, Any]:
    """A mission whose one execute sleeps ``seconds`` then prints ``slept``."""
    return {
        "return": {"url": url},
        "prepare": {
            "execute": [
                {"command": ["sh", "-c", f"sleep {seconds}; echo slept"], "stdout": "out.txt"}
            ]
        },
    }


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.perf_counter)

    def form(self) -> list[tuple[str, str]]:
        """The form fields, in order, exactly as sent (strict parsing)."""
        assert self.headers["Content-Type"] == "application/x-www-form-urlencoded"
        return parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True)

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json"
        return json.loads(self.body)


class Receiver:
    """A callback receiver: every request goes on ``queue``; ``responses`` (status, headers) are
    answered in order, then 200."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Received] = asyncio.Queue()
        self.responses: list[tuple[int, dict[str, str]]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.queue.put_nowait(Received(request.path, dict(request.headers), body))
        status, headers = self.responses.pop(0) if self.responses else (200, {})
        return web.Response(status=status, headers=headers, text="thanks")

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    async def next(self, timeout: float = 30.0) -> Received:
        """The next request, waiting at most ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            return await self.queue.get()


class Api:
    """A client of one judge server."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def submit(
        self, mission: Any, token: str | None = ALICE, how: str = "form", **kw: Any
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        """POST a mission as ``form``, ``multipart``, ``json`` or ``bearer`` (form, token in the
        header); returns (status, JSON body, headers)."""
        text = mission if isinstance(mission, str) else json.dumps(mission)
        headers: dict[str, str] = {}
        if how == "json":
            doc: dict[str, Any] = {"mission": mission}
            if token is not None:
                doc["token"] = token
            data: Any = json.dumps(doc)
            headers["Content-Type"] = "application/json"
        elif how == "multipart":
            data = aiohttp.FormData()
            if token is not None:
                data.add_field("token", token)
            data.add_field("mission", text, filename="mission.json")
        elif how == "bearer":
            data = {"mission": text}
            headers["Authorization"] = f"Bearer {token}"
        else:
            data = {"mission": text} if token is None else {"token": token, "mission": text}
        async with self.session.post(
            f"{self.url}/api/missions/", data=data, headers=headers, **kw
        ) as resp:
            return resp.status, await resp.json(), resp.headers

    async def get(self, mission_id: int | str, token: str = ALICE) -> tuple[int, dict[str, Any]]:
        async with self.session.get(
            f"{self.url}/api/missions/{mission_id}", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            return resp.status, await resp.json()

    async def delete(self, mission_id: int, token: str = ALICE) -> tuple[int, dict[str, Any]]:
        async with self.session.delete(
            f"{self.url}/api/missions/{mission_id}", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            return resp.status, await resp.json()

    async def wait_for(
        self,
        mission_id: int,
        check: Callable[[dict[str, Any]], bool],
        timeout: float = 60.0,
        token: str = ALICE,
    ) -> dict[str, Any]:
        """Poll ``GET /api/missions/{id}`` until ``check(body)`` holds; fails after ``timeout``."""
        return await poll(lambda: self._body(mission_id, token), check, timeout)

    async def _body(self, mission_id: int, token: str) -> dict[str, Any]:
        status, body = await self.get(mission_id, token)
        assert status == 200, body
        return body


async def all_removed(owner: str, timeout: float = 30.0) -> None:
    """Wait until no sandbox of ``owner`` is left: removals run in the background, after the
    callback (a readiness probe, polled)."""
    await poll(lambda: owned(owner), lambda cv: cv == ([], []), timeout)


async def poll(fetch: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float) -> T:
    """Fetch until ``check`` holds (every 20 ms); ``TimeoutError`` with the last value after
    ``timeout`` seconds. For states only an API shows; events use queues instead."""
    last: T | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await fetch()
                if check(last):
                    return last
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise TimeoutError(f"condition not met within {timeout} s; last: {last!r}") from None


def threads_reading_sandboxes() -> list[str]:
    """Stacks of the threads of this process blocked reading a sandbox's attached stream
    (white-box: a cancelled execute must not keep one, or the engine's thread pool shrinks and
    the process cannot exit until the read times out)."""
    stacks = [traceback.extract_stack(top) for top in sys._current_frames().values()]
    return [
        "".join(traceback.format_list(stack[-8:]))
        for stack in stacks
        if any(frame.name == "read_line" for frame in stack)
    ]


async def run(*argv: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run a command to completion; returns (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else dict(env),
        cwd=REPO,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def owned(owner: str) -> tuple[list[str], list[str]]:
    """Containers and volumes labelled ``io.judge.owner=<owner>``, asked of the docker CLI."""
    label = f"label=io.judge.owner={owner}"
    rc, containers, err = await run("docker", "ps", "-aq", "--filter", label)
    assert rc == 0, err
    rc, volumes, err = await run("docker", "volume", "ls", "-q", "--filter", label)
    assert rc == 0, err
    return containers.split(), volumes.split()


async def remove_owned(owner: str) -> None:
    containers, volumes = await owned(owner)
    if containers:
        await run("docker", "rm", "-f", "-v", *containers)
    if volumes:
        await run("docker", "volume", "rm", "-f", *volumes)


class InProcessJudge:
    """The judge app on a real port in this event loop, from a ``Settings`` built here."""

    def __init__(
        self, settings: Settings, door_settings: Mapping[str, BaseSettings] | None = None
    ) -> None:
        self.settings = settings
        self.app = create_app(settings, door_settings)
        self._runner = web.AppRunner(self.app, access_log=None)
        self.url = ""

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def app_store_counts(self) -> dict[str, int]:
        """Missions in the database by state."""
        return await self.app[STORE].missions.counts()


_LISTENING = re.compile(r"listening on (http://\S+)")


class ServerProcess:
    """``python -m service`` as a child process configured by ``JUDGE_*`` variables.

    Its log (stderr) is collected in ``lines``; ``start`` returns once it logs its address.
    """

    def __init__(self, env: Mapping[str, str], cwd: Path = REPO) -> None:
        # ``cwd``: the checkout whose server runs (benchmarks compare two side by side).
        self.env = {**os.environ, **env}
        if cwd != REPO:
            self.env["PYTHONPATH"] = str(cwd)
        self.cwd = cwd
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[str] | None = None

    async def start(self, timeout: float = 30.0) -> str:
        self._ready = asyncio.get_running_loop().create_future()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
        )
        self._reader = asyncio.create_task(self._read(self.proc, self._ready))
        try:
            async with asyncio.timeout(timeout):
                return await self._ready
        except TimeoutError:
            raise AssertionError("the server did not start:\n" + self.log) from None

    async def _read(self, proc: asyncio.subprocess.Process, ready: asyncio.Future[str]) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if (m := _LISTENING.search(line)) and not ready.done():
                ready.set_result(m.group(1))
        if not ready.done():
            ready.set_exception(AssertionError("the server exited:\n" + self.log))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def _end(self, sig: signal.Signals, timeout: float) -> int:
        assert self.proc is not None
        assert self._reader is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        async with asyncio.timeout(timeout):
            rc = await self.proc.wait()
            await self._reader
        return rc

    async def kill(self) -> int:
        """SIGKILL: a crash. Returns the exit status (-9)."""
        return await self._end(signal.SIGKILL, 30)

    async def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM: a graceful stop. Returns the exit status."""
        return await self._end(signal.SIGTERM, timeout)


def server_env(data_dir: Path, owner: str, **extra: str) -> dict[str, str]:
    """Environment for a ``ServerProcess``: tokens, data dir, owner label, short backoff."""
    return {
        "JUDGE_HOST": "127.0.0.1",
        "JUDGE_PORT": "0",
        "JUDGE_TOKENS": f"{ALICE},{BOB}",
        "JUDGE_DATA_DIR": str(data_dir),
        "JUDGE_SANDBOX_OWNER": owner,
        "JUDGE_DEFAULT_IMAGE": os.environ.get("JUDGE_TEST_IMAGE", "judge/default"),
        "JUDGE_CALLBACK_INITIAL_WAIT_S": "0.05",
        "JUDGE_CALLBACK_MAX_WAIT_S": "0.5",
        "JUDGE_CALLBACK_ATTEMPTS": "1000",
        "JUDGE_POOL": "none",  # no warm sandboxes: the tests count the missions' own
        **extra,
    }
