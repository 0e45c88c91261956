"""Accepted submissions/s and completed missions/s with one judge node and with two, on one
PostgreSQL, against raw Docker doing the same sandbox work in the same run.

    python -m bench.cluster_bench [--burst 60] [--workers 2]

Each node is a server process (``python -m service``) with its own data directory and owner
label; the burst of hello-world POSTs is spread over the nodes, then we wait for every callback.
On one machine both nodes share one Docker engine and two cores, so the second node adds
claimers and HTTP capacity but not sandbox capacity: the figure to expect from two hosts is
closer to twice the one-node rate. A throwaway PostgreSQL cluster is started (or
``JUDGE_TEST_DATABASE_URL`` used), as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.service_bench import raw_runs
from tests import pgcluster
from tests.seed000 import hello_mission
from tests.service.support import Api, Receiver, ServerProcess, remove_owned, server_env


async def burst(
    n_nodes: int, args: argparse.Namespace, server_url: str | None, tmp: Path
) -> tuple[str, float]:
    """One burst over ``n_nodes`` nodes on PostgreSQL (``server_url``), or one node on its
    SQLite file when ``server_url`` is None."""
    pg_url = "" if server_url is None else await pgcluster.fresh_database(server_url)
    receiver = Receiver()
    await receiver.start()
    servers: list[ServerProcess] = []
    owners = [f"judge-bench-cluster-{n}" for n in range(n_nodes)]
    try:
        async with aiohttp.ClientSession() as session:
            apis = []
            for n, owner in enumerate(owners):
                env = server_env(
                    tmp / f"{n_nodes}-{n}-{bool(pg_url)}",
                    owner,
                    JUDGE_DATABASE_URL=pg_url,
                    JUDGE_MAX_RUNNING=str(args.workers),
                    JUDGE_MAX_QUEUED=str(args.burst + 10),
                    JUDGE_DEFAULT_IMAGE=args.image,
                )
                server = ServerProcess(env)
                servers.append(server)
                apis.append(Api(session, await server.start()))
            mission = hello_mission(receiver.url)
            start = time.perf_counter()
            posts = [apis[i % n_nodes].submit(mission) for i in range(args.burst)]
            replies = await asyncio.gather(*posts)
            accepted_s = time.perf_counter() - start
            assert all(status == 200 for status, _, _ in replies), replies[:3]
            for _ in range(args.burst):
                await receiver.next(timeout=600)
            done_s = time.perf_counter() - start
    finally:
        for server in servers:
            await server.terminate()
        await receiver.stop()
        for owner in owners:
            await remove_owned(owner)
    return (
        f"{n_nodes} node(s) on {'PostgreSQL' if pg_url else 'SQLite'}, {args.workers} workers"
        f" each, burst of {args.burst}\n"
        f"  accepted                  {args.burst / accepted_s:7.1f} /s\n"
        f"  all called back after     {done_s:7.2f} s ({args.burst / done_s:.1f} missions/s)"
    ), done_s


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image", default="judge/default")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    with pgcluster.cluster() as server_url, tempfile.TemporaryDirectory() as tmp:
        text, _ = await burst(1, args, None, Path(tmp))
        print(text, flush=True)
        for n_nodes in (1, 2):
            text, _ = await burst(n_nodes, args, server_url, Path(tmp))
            print(text, flush=True)
    raw = await loop.run_in_executor(None, raw_runs, args.image, args.burst)
    print(f"raw docker run --rm x{args.burst}  {sum(raw) / 1000:7.2f} s (sequential)")


if __name__ == "__main__":
    asyncio.run(main())
