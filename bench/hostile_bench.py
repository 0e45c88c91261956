"""What hostile requests cost the server, against its idle health check, in one run.

    python -m bench.hostile_bench [--image judge/default]

A server process (``python -m service``) is started; for each hostile request of issue 11 the
script sends it once while asking ``/healthz`` back to back, and prints the request's answer and
duration, the health checks' median and worst latency (and their ratio to the idle median), and
how much the server's peak resident memory grew. A mission it accepts is then followed to its
end on a row of its own ("its run"), so that each request is measured alone (a run overlapping
the next request once made a 413 that parses in milliseconds look like a 1.1 s stall). The goal
is a worst /healthz of at most 100 ms during any request. Nothing here asserts: the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.service.support import ALICE, Receiver, ServerProcess, server_env
from tests.service.test_hostile import gzip_bomb, long_name_bomb, peak_rss

MiB = 1 << 20
# Where accepted missions call back: the bench's own receiver once it listens (its run ends
# with its callback; polling a 10,000-execute mission's row instead is itself a big load).
CALLBACK = ["http://127.0.0.1:9/callback"]


def mission(**parts: Any) -> bytes:
    doc = {"token": ALICE, "mission": {"return": {"url": CALLBACK[0]}, **parts}}
    return json.dumps(doc).encode()


def cases() -> list[tuple[str, str, dict[str, str], Callable[[], bytes]]]:
    json_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ALICE}"}
    tar_headers = {
        "Content-Type": "application/x-tar",
        "X-Auth-Token": ALICE,
        "X-Zerovm-Execute": "1.0",
    }
    keys = {"_" * i + "K": "v" for i in range(1, 31)}
    return [
        (
            "1M planned executes",
            "/api/missions/",
            json_headers,
            lambda: mission(tasks={"task": [{}] * 1000, "execute": [{"command": ["x"]}] * 1000}),
        ),
        (
            "1 MiB macro x 2000",
            "/api/missions/",
            json_headers,
            lambda: mission(
                tasks={
                    "task": [{"macro": {"BIG": "x" * MiB}}],
                    "execute": [{"command": ["echo"] + ["BIG"] * 2000}],
                }
            ),
        ),
        (
            "heaviest accepted parse",
            "/api/missions/",
            json_headers,
            lambda: mission(
                tasks={"task": [{"macro": keys}], "execute": [{"command": ["_" * (7 * MiB)]}]}
            ).replace(CALLBACK[0].encode(), b"http://169.254.169.254/"),
        ),
        (
            "10,000 files (the most JUDGE_MAX_FILES admits)",
            "/api/missions/",
            json_headers,
            lambda: mission(prepare={"file": {f"f{i}": "data:,x" for i in range(10_000)}}),
        ),
        (
            "50,000 files (refused from the count)",
            "/api/missions/",
            json_headers,
            lambda: mission(prepare={"file": {f"f{i}": "data:,x" for i in range(50_000)}}),
        ),
        (
            "10,000 executes (the most JUDGE_MAX_EXECUTES admits)",
            "/api/missions/",
            json_headers,
            lambda: mission(prepare={"execute": [{"command": ["true"]}] * 10_000}),
        ),
        (
            "Judge0 batch, 20 x 512 KiB",
            "/judge0/submissions/batch",
            {"Content-Type": "application/json", "X-Auth-Token": ALICE},
            lambda: json.dumps(
                {
                    "submissions": [
                        {"language_id": 46, "source_code": "#" * (512 * 1024) + "\necho hi"}
                    ]
                    * 20
                }
            ).encode(),
        ),
        (
            "Piston, 256 files, 8 MiB",
            "/api/v2/execute",
            {"Content-Type": "application/json", "Authorization": f"Bearer {ALICE}"},
            lambda: json.dumps(
                {
                    "language": "bash",
                    "version": "*",
                    "files": [{"name": "main.sh", "content": "echo hi"}]
                    + [{"name": f"f{i}.txt", "content": "x" * 32768} for i in range(255)],
                }
            ).encode(),
        ),
        ("bzip2 long-name tar", "/v1/acct", tar_headers, long_name_bomb),
        ("gzip bomb (1 GiB)", "/v1/acct", tar_headers, gzip_bomb),
    ]


async def health_until(
    session: aiohttp.ClientSession, url: str, done: asyncio.Future[Any]
) -> list[float]:
    took = []
    while not done.done():
        start = time.perf_counter()
        async with session.get(f"{url}/healthz") as resp:
            await resp.read()
        took.append((time.perf_counter() - start) * 1000)
    return took


def row(
    name: str,
    size: int,
    status: int,
    elapsed: float,
    took: list[float],
    idle_p50: float,
    grown: float,
) -> None:
    p50 = statistics.median(took) if took else 0.0
    worst = max(took) if took else 0.0
    print(
        f"{name:<26.26}{size:>10}{status:>8}{elapsed:>8.2f}"
        f"{p50:>12.1f}{worst:>8.1f}{worst / idle_p50:>8.1f}{grown:>10.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default=os.environ.get("JUDGE_TEST_IMAGE", "judge/default"))
    args = parser.parse_args()
    receiver = Receiver()
    await receiver.start()
    CALLBACK[0] = receiver.url
    with tempfile.TemporaryDirectory() as tmp:
        env = server_env(Path(tmp), "judge-bench-hostile", JUDGE_DEFAULT_IMAGE=args.image)
        server = ServerProcess(env)
        url = await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                idle_done = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_later(2.0, idle_done.set_result, None)
                idle = await health_until(session, url, idle_done)
                idle_p50 = statistics.median(idle)
                print(f"idle /healthz: median {idle_p50:.1f} ms, max {max(idle):.1f} ms")
                print(
                    f"{'request':<26}{'bytes':>10}{'status':>8}{'took s':>8}"
                    f"{'health p50':>12}{'max ms':>8}{'x idle':>8}{'RSS +MiB':>10}"
                )
                for name, path, headers, make in cases():
                    body = make()
                    before = peak_rss(server)
                    start = time.perf_counter()

                    async def send(
                        b: bytes = body, p: str = path, h: dict[str, str] = headers
                    ) -> tuple[int, bytes]:
                        async with session.post(f"{url}{p}", data=io.BytesIO(b), headers=h) as r:
                            return r.status, await r.read()

                    sending = asyncio.ensure_future(send())
                    took = await health_until(session, url, sending)
                    status, _ = await sending
                    elapsed = time.perf_counter() - start
                    grown = (peak_rss(server) - before) / MiB
                    row(name, len(body), status, elapsed, took, idle_p50, grown)
                    if path == "/api/missions/" and status == 200:
                        # Its run, to its callback, on a row of its own: it ends before the next
                        # request.
                        start = time.perf_counter()
                        ending = asyncio.ensure_future(receiver.next(timeout=1800))
                        took = await health_until(session, url, ending)
                        await ending
                        elapsed = time.perf_counter() - start
                        row("  its run, to its callback", 0, 0, elapsed, took, idle_p50, 0.0)
        finally:
            await server.terminate()
            await receiver.stop()


if __name__ == "__main__":
    asyncio.run(main())
