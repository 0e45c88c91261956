"""What one large submission costs the server's own process, and /healthz meanwhile.

    python -m bench.hostile_cpu [N]

A server process is started; N times (default 8) a mission of 10,000 executes naming an unknown
language is submitted: it is decoded, validated and echoed, then refused (400: nothing stored,
nothing runs). Printed: the CPU time of the server's process (every thread of it, not the
offload workers) per submission, and the worst /healthz latency during each. Work done in the
offload workers is not counted: that is the point of them. Nothing here asserts.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.service.support import ALICE, ServerProcess, server_env


def cpu_ms(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, in milliseconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    times = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    mission = {
        "language": "nope",
        "return": {"url": "http://127.0.0.1:9/"},
        "prepare": {"execute": [{"command": ["true"]}] * 10_000},
    }
    body = json.dumps({"token": ALICE, "mission": mission}).encode()
    headers = {"Content-Type": "application/json"}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(server_env(Path(tmp), "judge-bench-hostile-cpu"))
        url = await server.start()
        assert server.proc is not None
        pid = server.proc.pid
        try:
            async with aiohttp.ClientSession() as session:

                async def send() -> int:
                    data = io.BytesIO(body)
                    async with session.post(
                        f"{url}/api/missions/", data=data, headers=headers
                    ) as r:
                        await r.read()
                        return r.status

                cpus, worst = [], []
                for _ in range(times):
                    before = cpu_ms(pid)
                    sending = asyncio.ensure_future(send())
                    took = []
                    while not sending.done():
                        start = time.perf_counter()
                        async with session.get(f"{url}/healthz") as resp:
                            await resp.read()
                        took.append((time.perf_counter() - start) * 1000)
                    assert await sending == 400
                    cpus.append(cpu_ms(pid) - before)
                    worst.append(max(took))
            print(
                f"server-process CPU per submission: median {statistics.median(cpus):.0f} ms "
                f"(range {min(cpus):.0f}-{max(cpus):.0f}); worst /healthz during one: median "
                f"{statistics.median(worst):.0f} ms, max {max(worst):.0f} ms"
            )
        finally:
            await server.terminate()


if __name__ == "__main__":
    asyncio.run(main())
