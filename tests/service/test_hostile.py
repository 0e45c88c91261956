"""A token holder's hostile requests against a real server process: each is refused or contained,
the server's memory stays bounded and its health check keeps answering meanwhile.

The server runs as a child process so that its resident memory (``VmHWM``, the peak) can be read
and so that a stalled event loop shows as a slow health check.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.service.support import ALICE, ServerProcess, server_env

pytestmark = pytest.mark.docker

AUTH = {"Authorization": f"Bearer {ALICE}"}
URL = "http://127.0.0.1:9/callback"
MiB = 1 << 20


def peak_rss(server: ServerProcess) -> int:
    """The server process's peak resident memory in bytes."""
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


async def started(servers: list[ServerProcess], env: dict[str, str]) -> tuple[ServerProcess, str]:
    server = ServerProcess(env)
    servers.append(server)
    url = await server.start()
    return server, url


async def peak_rss_once_healthy(
    server: ServerProcess, session: aiohttp.ClientSession, url: str
) -> int:
    """:func:`peak_rss` once the server's health check has answered 200: the baseline of
    :func:`assert_peak_rss_grew_less`."""
    async with session.get(f"{url}/healthz") as resp:
        assert resp.status == 200
    return peak_rss(server)


def assert_peak_rss_grew_less(server: ServerProcess, before: int, bound: int) -> None:
    """The server's peak resident memory is less than ``bound`` bytes above ``before``."""
    grown = peak_rss(server) - before
    print(f"peak RSS grew by {grown / MiB:.1f} MiB")
    assert grown < bound


async def submit(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, Any]:
    async with session.post(
        f"{url}/api/missions/",
        data=io.BytesIO(body),
        headers={**AUTH, "Content-Type": "application/json"},
    ) as resp:
        return resp.status, await resp.json()


async def health_latencies(
    session: aiohttp.ClientSession, url: str, until: asyncio.Future[Any]
) -> list[float]:
    """Seconds each /healthz took, asked one after the other until ``until`` is done."""
    took: list[float] = []
    while not until.done():
        start = time.perf_counter()
        async with session.get(f"{url}/healthz") as resp:
            await resp.read()
        took.append(time.perf_counter() - start)
    return took


def mission_doc(**parts: Any) -> dict[str, Any]:
    return {"token": ALICE, "mission": {"return": {"url": URL}, **parts}}


async def test_work_bombs_are_refused_with_bounded_memory_and_a_live_server(
    servers: list[ServerProcess], session: aiohttp.ClientSession, tmp_path: Path, owner: str
) -> None:
    server, url = await started(servers, server_env(tmp_path / "data", owner))
    before = await peak_rss_once_healthy(server, session, url)
    idle = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(1.0, idle.set_result, None)
    baseline = await health_latencies(session, url, idle)
    print(f"idle health checks: n={len(baseline)} max={max(baseline) * 1000:.0f} ms")

    # A million planned executes in a few kilobytes.
    pairs = mission_doc(
        tasks={"task": [{}] * 1000, "execute": [{"command": ["true", "__TASK_ID__"]}] * 1000}
    )
    status, body = await submit(session, url, json.dumps(pairs).encode())
    assert status == 413, body
    assert body["error"]["code"] == "mission_too_large"
    assert body["error"]["path"] == "mission.tasks"

    # One 1 MiB macro value used 2000 times: 2 GB once expanded.
    bomb = mission_doc(
        tasks={
            "task": [{"macro": {"BIG": "x" * MiB}}],
            "execute": [{"command": ["echo"] + ["BIG"] * 2000}],
        }
    )
    status, body = await submit(session, url, json.dumps(bomb).encode())
    assert status == 413, body
    assert body["error"]["path"] == "mission.tasks.task[0].macro.BIG"

    # The most work a mission within the caps may cost: keys sharing long prefixes over a
    # template of megabytes of that prefix. Accepted as far as the caps go (the callback address
    # is refused afterwards), and the health check keeps answering while it is parsed.
    keys = {"_" * i + "K": "v" for i in range(1, 31)}
    heavy = mission_doc(
        tasks={"task": [{"macro": keys}], "execute": [{"command": ["_" * (7 * MiB)]}]}
    )
    heavy["mission"]["return"]["url"] = "http://169.254.169.254/"
    sending = asyncio.ensure_future(submit(session, url, json.dumps(heavy).encode()))
    took = await health_latencies(session, url, sending)
    status, body = await sending
    assert status == 400, body
    assert body["error"]["path"] == "mission.return.url"
    print(f"health checks during the heavy parse: n={len(took)} max={max(took) * 1000:.0f} ms")
    # The parse takes seconds: a loop blocked by it would answer one health check, after it.
    # (How fast they answer is bench/hostile_bench's figure, not a test's.)
    assert len(took) >= 2

    assert_peak_rss_grew_less(server, before, 200 * MiB)


async def test_query_tokens_never_reach_the_access_log(
    servers: list[ServerProcess], session: aiohttp.ClientSession, tmp_path: Path, owner: str
) -> None:
    server, url = await started(servers, server_env(tmp_path / "data", owner))
    async with session.get(f"{url}/rest/executor/?token={ALICE}&x=1") as resp:
        assert resp.status == 200
    async with session.get(f"{url}/rest/executor/?token=not-a-valid-token") as resp:
        assert resp.status == 401
    assert await server.terminate() == 0
    access = [line for line in server.lines if "/rest/executor/" in line]
    assert len(access) == 2, server.log
    assert all("token=REDACTED" in line for line in access), access
    assert ALICE not in server.log
    assert "not-a-valid-token" not in server.log


@pytest.mark.parametrize(
    ("host", "block", "warned"),
    [("0.0.0.0", "false", True), ("0.0.0.0", "true", False), ("127.0.0.1", "false", False)],
)
async def test_a_warning_when_listening_beyond_loopback_with_private_urls_allowed(
    servers: list[ServerProcess],
    tmp_path: Path,
    owner: str,
    host: str,
    block: str,
    warned: bool,
) -> None:
    env = server_env(tmp_path / "data", owner, JUDGE_HOST=host, JUDGE_BLOCK_PRIVATE_URLS=block)
    server, _ = await started(servers, env)
    assert await server.terminate() == 0
    assert ("SSRF" in server.log) is warned, server.log


def long_name_bomb() -> bytes:
    """The report's request: a bzip2 tar whose GNU long-name record declares 512 MiB."""
    import bz2
    import tarfile

    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = 512 * MiB
    return bz2.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * (64 * MiB), 9)


def gzip_bomb() -> bytes:
    """A gzip stream of 1 GiB of zeros, about a megabyte on the wire."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (16 * MiB)
    return b"".join([*(packer.compress(chunk) for _ in range(64)), packer.flush()])


async def test_archive_bombs_to_the_exec_api_cost_little_memory(
    servers: list[ServerProcess], session: aiohttp.ClientSession, tmp_path: Path, owner: str
) -> None:
    server, url = await started(servers, server_env(tmp_path / "data", owner))
    before = await peak_rss_once_healthy(server, session, url)
    for bomb, expected in ((long_name_bomb(), "bytes of names"), (gzip_bomb(), "decompressed")):
        headers = {
            "X-Auth-Token": ALICE,
            "X-Zerovm-Execute": "1.0",
            "Content-Type": "application/x-tar",
        }

        async def post(data: bytes = bomb, hdrs: dict[str, str] = headers) -> tuple[int, Any]:
            async with session.post(f"{url}/v1/acct", data=io.BytesIO(data), headers=hdrs) as r:
                return r.status, await r.json()

        sending = asyncio.ensure_future(post())
        took = await health_latencies(session, url, sending)
        status, body = await sending
        assert status == 400, body
        assert expected in body["error"]["message"], body
        # Health checks kept answering while it was read (their latency is bench/'s figure).
        assert took, "no health check answered while the bomb was read"
        print(f"{expected}: {len(bomb)} bytes sent, health max {max(took) * 1000:.0f} ms")
    assert_peak_rss_grew_less(server, before, 200 * MiB)
