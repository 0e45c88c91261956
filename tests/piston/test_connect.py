"""Piston's WebSocket protocol over a fake sandbox: messages, stages, close codes, auth.

The fake stands in for the sandbox only; what a real program sees (its stdin live, its output
as written, a signal that reaches it) is tested on the engine in ``test_connect_engine.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.piston.fakecore import TOKEN, LiveCore, app_with
from tests.piston.fixtures import body, exited

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def client_for(aiohttp_client: Any, core: LiveCore, **settings: Any) -> TestClient[Any, Any]:
    return await aiohttp_client(app_with(core, **settings))


async def messages(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every message until the server closes; the close code is the last item."""
    got: list[dict[str, Any]] = []
    async for msg in ws:
        assert msg.type == aiohttp.WSMsgType.TEXT
        got.append(msg.json())
    got.append({"close": ws.close_code})
    return got


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (the server's side of a close ends a moment later)."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def next_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    doc: dict[str, Any] = msg.json()
    return doc


@pytest.mark.parametrize("path", ["/api/v2/connect", "/api/v2/piston/connect/"])
async def test_a_job_with_live_stdin(aiohttp_client: Any, path: str) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    async with client.ws_connect(path, headers=AUTH) as ws:
        await ws.send_json({"type": "init", **body()})
        assert await next_json(ws) == {"type": "runtime", "language": "python", "version": "3.11.2"}
        assert await next_json(ws) == {"type": "stage", "stage": "run"}
        assert await next_json(ws) == {"type": "data", "stream": "stdout", "data": "ready\n"}
        await ws.send_json({"type": "data", "stream": "stdin", "data": "héllo\n"})
        got = ""
        while got != "HÉLLO\n":  # split in two chunks by the program, whole characters here
            msg = await next_json(ws)
            assert msg["type"] == "data"
            got += msg["data"]
        await ws.send_json({"type": "data", "stream": "stdin", "data": "quit\n"})
        rest = await messages(ws)
    assert rest == [
        exited("run"),
        {"close": 4999},
    ]
    assert core.boxes[0].files == {"main.py": b"print(1)"}
    assert core.boxes[0].closed


async def test_a_compiled_job_and_stdin_sent_early(aiohttp_client: Any) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "init", **body(language="c", version="*")})
        await ws.send_json({"type": "data", "stream": "stdin", "data": "early\nquit\n"})
        got = await messages(ws)
    assert got == [
        {"type": "runtime", "language": "c", "version": "12.2.0"},
        {"type": "stage", "stage": "compile"},
        {"type": "data", "stream": "stderr", "data": "warning: é\n"},
        exited("compile"),
        {"type": "stage", "stage": "run"},
        {"type": "data", "stream": "stdout", "data": "ready\n"},
        {"type": "data", "stream": "stdout", "data": "E"},
        {"type": "data", "stream": "stdout", "data": "ARLY\n"},
        exited("run"),
        {"close": 4999},
    ]
    compile_run, run = core.boxes[0].runs
    assert compile_run.stdin == []  # the early input waited for the run
    assert run.stdin == [b"early\nquit\n"]


async def test_a_failed_compile_runs_nothing(aiohttp_client: Any) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    bad = body(language="c", version="*", files=[{"content": "error"}])
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "init", **bad})
        got = await messages(ws)
    assert [m.get("type") for m in got] == ["runtime", "stage", "data", "exit", None]
    assert got[3] == {
        "type": "exit",
        "stage": "compile",
        "code": 1,
        "signal": None,
        "status": "RE",
        "message": "Exited with error status 1",
    }
    assert got[-1] == {"close": 4999}
    assert len(core.boxes[0].runs) == 1


async def test_the_same_source_compiles_once_through_the_cache(aiohttp_client: Any) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    good = {"type": "init", **body(language="c", version="*")}
    bad = {"type": "init", **body(language="c", version="*", files=[{"content": "error"}])}
    sessions = []
    for init in (good, good, bad, bad):
        async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
            await ws.send_json(init)
            await ws.send_json({"type": "data", "stream": "stdin", "data": "quit\n"})
            sessions.append(await messages(ws))
    # The second job replays the first one's compile stage and unpacks its box.
    assert sessions[1] == sessions[0]
    assert sessions[3] == sessions[2]
    assert [run.argv[0] for run in core.boxes[0].runs] == ["gcc", "./a.out"]
    assert [run.argv[0] for run in core.boxes[1].runs] == ["./a.out"]
    assert core.boxes[0].ran[-1][:2] == ("tar", "-cf")
    assert core.boxes[1].ran == [("tar", "-xf", ".piston/artifact.tar")]
    assert core.boxes[1].files["main.py"] == core.boxes[0].files["main.py"]
    # A clean compile failure is kept too: answered without compiling again.
    assert [run.argv[0] for run in core.boxes[3].runs] == []
    assert [m.get("type") for m in sessions[3]] == ["runtime", "stage", "data", "exit", None]
    # The REST execute shares the cache: the same source compiled by a WebSocket is a hit.
    answer = await client.post(
        "/api/v2/execute", json=body(language="c", version="*"), headers=AUTH
    )
    assert answer.status == 200
    [(_, mission, io)] = core.missions
    assert [ex["name"] for ex in mission["prepare"]["execute"]] == ["unpack", "run"]
    assert ".piston/artifact.tar" in io.inputs


async def test_a_signal_reaches_the_program(aiohttp_client: Any) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "init", **body()})
        for _ in range(3):  # runtime, stage, "ready"
            await next_json(ws)
        await ws.send_json({"type": "signal", "signal": "SIGINT"})
        got = await messages(ws)
    assert got == [
        {
            "type": "exit",
            "stage": "run",
            "code": None,
            "signal": "SIGINT",
            "status": "SG",
            "message": "Caught fatal signal 2",
        },
        {"close": 4999},
    ]
    assert core.boxes[0].runs[0].signals == [2]


async def test_a_signal_gets_through_while_the_program_does_not_read(
    aiohttp_client: Any,
) -> None:
    core = LiveCore(deaf=True)
    client = await client_for(aiohttp_client, core)
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "init", **body()})
        for _ in range(3):
            await next_json(ws)
        chunk = "x" * 300_000
        for _ in range(3):  # more than the program reads: the stdin waits in the door
            await ws.send_json({"type": "data", "stream": "stdin", "data": chunk})
        await ws.send_json({"type": "signal", "signal": "SIGINT"})
        got = await messages(ws)
    assert got[-2]["signal"] == "SIGINT"
    assert got[-1] == {"close": 4999}


async def test_too_much_stdin_before_the_run_is_an_error(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, LiveCore())
    c = body(language="c", version="*", files=[{"content": "slow"}])
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "init", **c, "stdin": "y" * 600_000})
        await ws.send_json({"type": "data", "stream": "stdin", "data": "z" * 600_000})
        got = await messages(ws)
    assert got[-1] == {"close": 4002}
    assert "bytes of stdin may wait" in got[-2]["message"]


async def test_no_init_within_a_second_closes_4001(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, LiveCore())
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        assert await messages(ws) == [{"close": 4001}]
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "hello"})  # ignored, as Piston ignores it: no init yet
        assert await messages(ws) == [{"close": 4001}]


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ({"type": "data", "stream": "stdin", "data": "x"}, 4003),
        ({"type": "signal", "signal": "SIGKILL"}, 4003),
    ],
)
async def test_messages_before_init_close_4003(
    aiohttp_client: Any, first: dict[str, Any], code: int
) -> None:
    client = await client_for(aiohttp_client, LiveCore())
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json(first)
        assert await messages(ws) == [{"close": code}]


@pytest.mark.parametrize(
    ("second", "code"),
    [
        ({"type": "init", **body()}, 4000),
        ({"type": "data", "stream": "stdout", "data": "x"}, 4004),
        ({"type": "signal", "signal": "SIGNOPE"}, 4005),
        ({"type": "signal", "signal": 9}, 4005),
    ],
)
async def test_mistakes_after_init(aiohttp_client: Any, second: dict[str, Any], code: int) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "init", **body()})
        for _ in range(3):
            await next_json(ws)
        await ws.send_json(second)
        assert (await messages(ws))[-1] == {"close": code}
    await eventually(lambda: core.boxes[0].closed)  # the program stopped, its sandbox removed


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (
            "{not json",
            "the message is not JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (
            '{"type": "init", "language": "cobol", "version": "*", "files": []}',
            "cobol-* runtime is unknown",
        ),
        ('{"type": "init", "version": "*"}', "language is required as a string"),
    ],
)
async def test_errors_are_told_then_close_4002(
    aiohttp_client: Any, sent: str, message: str
) -> None:
    client = await client_for(aiohttp_client, LiveCore())
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_str(sent)
        assert await messages(ws) == [{"type": "error", "message": message}, {"close": 4002}]


async def test_the_token_may_come_in_init(aiohttp_client: Any) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    async with client.ws_connect("/api/v2/connect") as ws:
        await ws.send_json({"type": "init", "token": TOKEN, **body()})
        assert (await next_json(ws))["type"] == "runtime"
    async with client.ws_connect("/api/v2/connect") as ws:
        await ws.send_json({"type": "init", "token": "wrong", **body()})
        assert await messages(ws) == [
            {"type": "error", "message": "unknown or revoked token"},
            {"close": 4002},
        ]
    async with client.ws_connect("/api/v2/connect") as ws:
        await ws.send_json({"type": "init", **body()})
        got = await messages(ws)
        assert got[-1] == {"close": 4002}
        assert "token is required" in got[0]["message"]


async def test_anonymous_clients_when_allowed(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, LiveCore(), anonymous=True, anonymous_rate_limit=1)
    async with client.ws_connect("/api/v2/connect") as ws:
        await ws.send_json({"type": "init", **body()})
        assert (await next_json(ws))["type"] == "runtime"
    async with client.ws_connect("/api/v2/connect") as ws:
        await ws.send_json({"type": "init", **body()})
        got = await messages(ws)
        assert got[-1] == {"close": 4002}
        assert "at most 1" in got[0]["message"]


async def test_a_client_that_goes_away_stops_the_program(aiohttp_client: Any) -> None:
    core = LiveCore()
    client = await client_for(aiohttp_client, core)
    async with client.ws_connect("/api/v2/connect", headers=AUTH) as ws:
        await ws.send_json({"type": "init", **body()})
        for _ in range(3):
            await next_json(ws)
    # The server side ends once it sees the close: the program is stopped, the box removed.
    await eventually(lambda: core.boxes[0].closed)
    assert core.boxes[0].runs[0].ended.is_set()
