"""What the loop's engine client makes of answers that are not an engine's (a fake socket: this
is the client's parsing, not a claim about the engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from orchestrator.errors import EngineUnavailable
from orchestrator.sandbox import enginehttp


@asynccontextmanager
async def server(
    path: Path, answer: Callable[[asyncio.StreamWriter], object]
) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0)
        try:
            result = answer(writer)
            if asyncio.iscoroutine(result):
                await result
        finally:
            writer.close()

    srv = await asyncio.start_unix_server(handle, path=str(path))
    try:
        yield str(path)
    finally:
        srv.close()
        await srv.wait_closed()


async def test_an_engine_answer_is_parsed(tmp_path: Path) -> None:
    def ok(w: asyncio.StreamWriter) -> None:
        w.write(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"Version": "9"}')

    async with server(tmp_path / "s", ok) as path:
        assert await enginehttp.get_json(path, "/v1.41/version", timeout_s=5) == (
            200,
            {"Version": "9"},
        )


async def test_an_error_answer_keeps_its_message(tmp_path: Path) -> None:
    def no(w: asyncio.StreamWriter) -> None:
        w.write(b'HTTP/1.0 404 Not Found\r\n\r\n{"message": "no such image: x"}')

    async with server(tmp_path / "s", no) as path:
        status, doc = await enginehttp.get_json(path, "/x", timeout_s=5)
    assert (status, enginehttp.message(status, doc)) == (404, "no such image: x")
    assert enginehttp.message(500, None) == "HTTP 500"


async def test_what_is_not_http_is_unavailable(tmp_path: Path) -> None:
    def garbage(w: asyncio.StreamWriter) -> None:
        w.write(b"SSH-2.0-OpenSSH\r\n")

    async with server(tmp_path / "s", garbage) as path:
        with pytest.raises(EngineUnavailable, match="is not HTTP"):
            await enginehttp.get_json(path, "/x", timeout_s=5)


async def test_an_endless_answer_is_cut_at_the_cap(tmp_path: Path) -> None:
    async def endless(w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.0 200 OK\r\n\r\n")
        try:
            while True:
                w.write(b"x" * 65536)
                await w.drain()
        except (ConnectionError, OSError):
            pass

    async with server(tmp_path / "s", endless) as path:
        with pytest.raises(EngineUnavailable, match="bytes"):
            await enginehttp.get_json(path, "/x", timeout_s=10)


async def test_silence_is_unavailable_after_the_timeout(tmp_path: Path) -> None:
    never = asyncio.Event()

    async def silent(w: asyncio.StreamWriter) -> None:
        await never.wait()

    async with server(tmp_path / "s", silent) as path:
        with pytest.raises(EngineUnavailable, match="no answer"):
            await enginehttp.get_json(path, "/x", timeout_s=0.2)
        never.set()
