"""Durable intake under load: submissions accepted per second and their latency percentiles.

    python -m bench.intake_bench [--requests 4000] [--connections 64] [--warmup 500]
                                 [--client ab|aiohttp] [--keepalive] [--idle-workers]
                                 [--database sqlite|postgresql] [--env K=V ...]
                                 [--tree DIR ...] [--runs 3] [--profile FILE] [--nodes N]

Starts the server as its own process (``python -m service``, a fresh data directory, two workers
kept busy by the very missions submitted, ``JUDGE_MAX_QUEUED=100000``), sends ``--warmup``
hello-world submissions, then ``--requests`` more over ``--connections`` concurrent connections
and reports what the server accepted per second, the latency percentiles and the server's CPU per
submission (every process of the server). Every 200 means the mission was committed (fsync'd)
before the answer.

The load generator is ApacheBench by default (``ab -n 4000 -c 64`` posting the form: the token in
the body and a mission with a callback URL), a C program using little CPU; ``--client aiohttp``
is the Python client this bench used before (about 0.2-0.3 ms of CPU per submission on the same
cores). ``ab`` opens a connection per request unless ``--keepalive``.

Side by side: each ``--tree`` is a checkout of the judge (e.g. a ``git worktree`` of the commit to
compare with) whose server is started instead of this one's; the trees take turns, ``--runs``
rounds, and a ratio against the first tree is printed per round, with the load average when each
measurement began. ``--database postgresql`` starts a throwaway PostgreSQL cluster (fsync on, as
in production) shared by the runs, a fresh database each. ``--profile FILE`` records the measured
part with ``py-spy`` (``--format raw``, samples holding the GIL, every thread and process of the
first node). ``--nodes N`` (PostgreSQL; repeatable, each taking its turn) starts N nodes sharing one
port (``JUDGE_REUSE_PORT``), the two workers and two warm sandboxes split between them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests import pgcluster
from tests.seed000 import hello_mission
from tests.service.support import ALICE, REPO, ServerProcess, remove_owned, server_env, sleeper

OWNER = "judge-bench-intake"
CALLBACK = "http://127.0.0.1:9/cb"  # nobody listens: one attempt each (JUDGE_CALLBACK_ATTEMPTS=1)


@dataclass
class Figures:
    """One measurement."""

    accepted_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms: float  # per accepted submission, every process of the server
    statuses: dict[int, int]
    load: str  # the load average when it began
    engine_cores: float = 0.0  # the engine's CPU seconds per second of the run
    client_cores: float = 0.0  # the load generator's

    def line(self) -> str:
        return (
            f"{self.accepted_s:7.0f}/s  p50 {self.p50_ms:5.0f} ms  p99 {self.p99_ms:5.0f} ms  "
            f"max {self.max_ms:5.0f} ms  server CPU {self.server_cpu_ms:.3f} ms/submission  "
            f"cores: server {self.server_cpu_ms * self.accepted_s / 1000:.2f} "
            f"engine {self.engine_cores:.2f} client {self.client_cores:.2f}  "
            f"statuses {self.statuses}  load {self.load}"
        )


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (every thread) and its waited-for children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, ()))
    return found


def server_cpu(pid: int) -> float:
    """CPU seconds of the server: its process and every serving process it started."""
    total = 0.0
    for p in _descendants(pid):
        try:
            total += _cpu_of(p)
        except OSError:
            pass
    return total


ENGINE = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc", "runsc")


def engine_cpu() -> float:
    """CPU seconds so far of the container engine's processes (shared with everyone's
    containers on this machine: a rough figure of what the workers' sandboxes cost it)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ENGINE:
                    total += _cpu_of(int(entry.name))
            except OSError:
                continue
    return total


def _py_spy() -> str:
    """py-spy from PATH or next to this interpreter (installed as a tool into the venv)."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("py-spy not found: pip install py-spy")
    return found


def _client_cpu() -> float:
    """CPU seconds of this process and its waited-for children (``ab``)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ab = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ab.ru_utime + ab.ru_stime


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def form_body() -> bytes:
    mission = hello_mission(CALLBACK)
    return urllib.parse.urlencode({"token": ALICE, "mission": json.dumps(mission)}).encode()


def run_ab(url: str, body: Path, requests: int, connections: int, keepalive: bool) -> Figures:
    """``ab -n requests -c connections`` posting ``body`` as a form."""
    argv = ["ab", "-q", "-n", str(requests), "-c", str(connections), "-s", "120"]
    argv += ["-p", str(body), "-T", "application/x-www-form-urlencoded"]
    argv += ["-k"] if keepalive else []
    done_ab = subprocess.run([*argv, f"{url}/api/missions/"], capture_output=True, text=True)
    if done_ab.returncode != 0:
        raise RuntimeError(f"ab failed ({done_ab.returncode}): {done_ab.stderr.strip()}")
    out = done_ab.stdout
    done = int(_ab_field(out, r"Complete requests:\s+(\d+)"))
    non_2xx = int(_ab_field(out, r"Non-2xx responses:\s+(\d+)", "0"))
    exceptions = int(_ab_field(out, r"Exceptions:\s+(\d+)", "0"))  # connection errors
    took = float(_ab_field(out, r"Time taken for tests:\s+([\d.]+)"))

    def pct(n: str) -> float:
        return float(_ab_field(out, rf"\n\s*{n}%\s+(\d+)"))

    statuses = {200: done - non_2xx}
    if non_2xx:
        statuses[0] = non_2xx  # ab does not say which statuses; 0: "not 2xx"
    if exceptions:
        statuses[-1] = exceptions
    return Figures(
        accepted_s=(done - non_2xx) / took,
        p50_ms=pct("50"),
        p99_ms=pct("99"),
        max_ms=pct("100"),
        server_cpu_ms=0.0,
        statuses=statuses,
        load="",
    )


def _ab_field(out: str, pattern: str, default: str | None = None) -> str:
    m = re.search(pattern, out)
    if m is None:
        if default is None:
            raise RuntimeError(f"ab's output has no {pattern!r}:\n{out}")
        return default
    return m.group(1)


async def run_aiohttp(url: str, body: bytes, requests: int, connections: int) -> Figures:
    """The same with aiohttp's client from this process (keep-alive connections)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    todo = iter(range(requests))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for _ in todo:
                start = time.perf_counter()
                async with session.post(f"{url}/api/missions/", data=body, headers=headers) as resp:
                    await resp.read()
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    lat = sorted(latencies)
    return Figures(
        accepted_s=statuses.get(200, 0) / elapsed,
        p50_ms=statistics.median(lat),
        p99_ms=lat[int(len(lat) * 0.99) - 1],
        max_ms=lat[-1],
        server_cpu_ms=0.0,
        statuses=statuses,
        load="",
    )


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway cluster with fsync on (the tests' clusters turn it off)."""
    given = os.environ.get("JUDGE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    own = pgcluster.Cluster()
    try:
        own.start(fsync=True)
        yield own.url
    finally:
        own.remove()


async def measure(
    args: argparse.Namespace, tree: Path, nodes: int, pg_server: str | None
) -> Figures:
    """Servers from ``tree`` (``--nodes``, sharing a port, each with its share of the two
    workers and warm sandboxes): warm up, then the measured run."""
    with tempfile.TemporaryDirectory() as tmp:
        pg_url = "" if pg_server is None else await pgcluster.fresh_database(pg_server)
        share = str(max(1, 2 // nodes))
        shared_port = {} if nodes == 1 else {"JUDGE_PORT": str(pgcluster.free_port())}
        if nodes > 1:
            shared_port["JUDGE_REUSE_PORT"] = "1"
        servers = []
        for n in range(nodes):
            env = server_env(
                Path(tmp) / f"data{n}",
                f"{OWNER}-{n}",
                JUDGE_DEFAULT_IMAGE=args.image,
                JUDGE_MAX_QUEUED="100000",
                JUDGE_SHUTDOWN_GRACE_S="0",
                JUDGE_MAX_RUNNING=share,
                JUDGE_POOL=f"{args.image}={share}",
                JUDGE_CALLBACK_ATTEMPTS="1",
                JUDGE_DATABASE_URL=pg_url,
                **shared_port,
                **dict(kv.split("=", 1) for kv in args.env),
            )
            servers.append(ServerProcess(env, cwd=tree))
        if args.idle_workers:
            body = urllib.parse.urlencode(
                {"token": ALICE, "mission": json.dumps(sleeper(CALLBACK, 60))}
            ).encode()
        else:
            body = form_body()
        body_file = Path(tmp) / "body"
        body_file.write_bytes(body)
        profiler = None
        try:
            url = ""
            for server in servers:
                url = await server.start()
            pids = [server.proc.pid for server in servers if server.proc is not None]
            if args.warmup:
                await _load(args, url, body, body_file, args.warmup)
            if args.profile:
                spy = [_py_spy(), "record", "-p", str(pids[0]), "-s", "--gil", "-r", "500"]
                profiler = subprocess.Popen(
                    [*spy, "-d", "600", "--format", "raw", "-o", args.profile],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                await asyncio.sleep(1)  # py-spy attaches
            load = load_average()
            cpu0, engine0, client0 = sum(map(server_cpu, pids)), engine_cpu(), _client_cpu()
            start = time.perf_counter()
            figures = await _load(args, url, body, body_file, args.requests)
            took = time.perf_counter() - start
            used = sum(map(server_cpu, pids)) - cpu0
            figures.server_cpu_ms = used / max(figures.statuses.get(200, 0), 1) * 1000
            figures.engine_cores = (engine_cpu() - engine0) / took
            figures.client_cores = (_client_cpu() - client0) / took
            figures.load = load
        finally:
            if profiler is not None:
                profiler.send_signal(2)  # SIGINT: py-spy writes what it has
                profiler.wait(60)
            for n, server in enumerate(servers):
                if server.proc is not None:
                    await server.terminate(timeout=120)
                await remove_owned(f"{OWNER}-{n}")
    return figures


async def _load(
    args: argparse.Namespace, url: str, body: bytes, body_file: Path, n: int
) -> Figures:
    if args.client == "ab":
        return await asyncio.to_thread(run_ab, url, body_file, n, args.connections, args.keepalive)
    return await run_aiohttp(url, body, n, args.connections)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--idle-workers", action="store_true")
    parser.add_argument("--client", choices=("ab", "aiohttp"), default="ab")
    parser.add_argument("--keepalive", action="store_true")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--env", action="append", default=[], help="K=V for the server")
    parser.add_argument("--tree", action="append", type=Path, help="a judge checkout to run")
    parser.add_argument(
        "--nodes", type=int, action="append", help="nodes sharing the port (PostgreSQL)"
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", help="py-spy raw output of the (last) measured run")
    args = parser.parse_args()
    args.nodes = args.nodes or [1]
    if max(args.nodes) > 1 and args.database != "postgresql":
        raise SystemExit("--nodes needs --database postgresql (JUDGE_REUSE_PORT)")
    if args.client == "ab" and shutil.which("ab") is None:
        raise SystemExit("ab not found: apt-get install apache2-utils (or --client aiohttp)")
    trees = [t.resolve() for t in (args.tree or [REPO])]
    workers = "workers idle" if args.idle_workers else "workers busy"
    keep = "keep-alive" if args.keepalive or args.client == "aiohttp" else "a connection each"
    print(
        f"{args.requests} hello-world submissions after {args.warmup}, {args.connections} "
        f"connections ({args.client}, {keep}), {workers}, {args.database}, "
        f"{os.cpu_count()} cpus; goal 2000/s, p99 <= 100 ms"
    )
    with postgres_server() if args.database == "postgresql" else _nothing() as pg:
        for n in range(args.runs):
            first: Figures | None = None
            for tree in trees:
                for nodes in args.nodes:
                    figures = await measure(args, tree, nodes, pg)
                    ratio = (
                        "" if first is None else f"  x{figures.accepted_s / first.accepted_s:.2f}"
                    )
                    first = first or figures
                    name = f"{tree.name} {nodes} node{'s' if nodes > 1 else ''}"
                    print(f"run {n + 1} {name:>16}: {figures.line()}{ratio}", flush=True)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    asyncio.run(main())
