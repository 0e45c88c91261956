"""Piston's WebSocket on the real engine: a live program's stdin and output, a compile stage,
and a signal that really reaches the program."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.piston.conftest import AUTH
from tests.piston.fixtures import exited

pytestmark = pytest.mark.docker


async def until(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> list[dict[str, Any]]:
    """Messages until the program's stdout holds ``wanted``."""
    seen: list[dict[str, Any]] = []
    out = ""
    while wanted not in out:
        msg = await ws.receive(timeout=30)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg, seen)
        doc = msg.json()
        seen.append(doc)
        if doc["type"] == "data" and doc["stream"] == "stdout":
            out += doc["data"]
    return seen


async def rest(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    got = [msg.json() async for msg in ws if msg.type == aiohttp.WSMsgType.TEXT]
    got.append({"close": ws.close_code})
    return got


def py(source: str) -> dict[str, Any]:
    return {"type": "init", "language": "python", "version": "*", "files": [{"content": source}]}


async def test_a_conversation_with_a_live_program(
    piston: str, session: aiohttp.ClientSession
) -> None:
    source = "print('name?', flush=True)\nname = input()\nprint('hi', name, flush=True)\n"
    async with session.ws_connect(f"{piston}/connect", headers=AUTH) as ws:
        await ws.send_json(py(source))
        seen = await until(ws, "name?")
        assert seen[0]["type"] == "runtime"
        assert seen[1] == {"type": "stage", "stage": "run"}
        await ws.send_json({"type": "data", "stream": "stdin", "data": "bob\n"})
        await until(ws, "hi bob")
        end = await rest(ws)
    assert end[-2:] == [
        exited("run"),
        {"close": 4999},
    ]


async def test_a_signal_reaches_the_program(piston: str, session: aiohttp.ClientSession) -> None:
    # The handler writes with os.write: the signal may land while print() still holds stdout.
    source = (
        "import os, signal, time\n"
        "def caught(*_):\n"
        "    os.write(1, b'caught\\n')\n"
        "    os._exit(3)\n"
        "signal.signal(signal.SIGUSR1, caught)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    async with session.ws_connect(f"{piston}/connect", headers=AUTH) as ws:
        await ws.send_json(py(source))
        await until(ws, "ready")
        await ws.send_json({"type": "signal", "signal": "SIGUSR1"})
        await until(ws, "caught")  # the program's own handler ran
        end = await rest(ws)
    assert end[-2]["code"] == 3
    assert end[-1] == {"close": 4999}


async def test_a_compiled_program_and_sigkill(piston: str, session: aiohttp.ClientSession) -> None:
    source = (
        "#include <stdio.h>\n#include <unistd.h>\n"
        'int main(){int a; printf("go\\n"); fflush(stdout);'
        ' while (scanf("%d", &a) == 1) { printf("%d\\n", a * a); fflush(stdout); } pause(); }\n'
    )
    init = {"type": "init", "language": "c", "version": "*", "files": [{"content": source}]}
    async with session.ws_connect(f"{piston}/connect", headers=AUTH) as ws:
        await ws.send_json(init)
        seen = await until(ws, "go")
        kinds = [(m["type"], m.get("stage")) for m in seen]
        assert ("stage", "compile") in kinds
        assert ("exit", "compile") in kinds
        assert ("stage", "run") in kinds
        await ws.send_json({"type": "data", "stream": "stdin", "data": "7\n"})
        await until(ws, "49")
        await ws.send_json({"type": "signal", "signal": "SIGKILL"})
        end = await rest(ws)
    assert end[-2] == {
        "type": "exit",
        "stage": "run",
        "code": None,
        "signal": "SIGKILL",
        "status": "SG",
        "message": "Caught fatal signal 9",
    }
    assert end[-1] == {"close": 4999}


async def test_a_compile_is_shared_with_execute_through_the_cache(
    piston: str, session: aiohttp.ClientSession
) -> None:
    source = '#include <stdio.h>\nint main(){int a; scanf("%d", &a); printf("%d\\n", a + 1);}\n'
    files = [{"content": source}]
    async with session.post(
        f"{piston}/execute",
        json={"language": "c", "version": "*", "files": files, "stdin": "1"},
        headers=AUTH,
    ) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["run"]["stdout"] == "2\n"
    init = {"type": "init", "language": "c", "version": "*", "files": files}
    async with session.ws_connect(f"{piston}/connect", headers=AUTH) as ws:
        await ws.send_json(init)
        await ws.send_json({"type": "data", "stream": "stdin", "data": "41\n"})
        got = await rest(ws)
    assert got[1:3] == [{"type": "stage", "stage": "compile"}, exited("compile")]
    assert {"type": "data", "stream": "stdout", "data": "42\n"} in got
    assert got[-2:] == [exited("run"), {"close": 4999}]
    async with session.get(piston.replace("/api/v2", "") + "/metrics") as resp:
        text = await resp.text()
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("judge_piston_compile_cache")
    }
    assert values["judge_piston_compile_cache_hits_total"] == 1, values
    assert values["judge_piston_compile_cache_misses_total"] == 1, values
