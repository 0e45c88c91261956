"""Worker processes for pure CPU work on large inputs, so that it never holds the loop's GIL.

A thread does not keep a big mission's work off the event loop: pydantic-core validates a whole
model, and ``json`` decodes or encodes a whole document, in one call that holds the GIL
throughout, so the loop (``/healthz`` included) waits for it. ``Offload`` runs such work in
other processes, whose GIL is their own; only the arguments and the answer cross (pickled), so
callers send bytes or small values when they can and get back what they need.

The processes are started from a fork server (never forked from this threaded process), with
``preload`` imported once in it, and all warmed by ``start``; ``stop`` lets the work under way
finish. A worker that dies (killed, out of memory) breaks the pool: the call under way raises
``BrokenProcessPool`` (the request answers 500) and the next call gets a new pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import select
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

WORKER_NICENESS = 10


def _worker_init(server_pid: int) -> None:
    # Ctrl-C reaches the whole process group: the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Their work waits when the CPU is short, the event loop's answers do not: on a busy
    # machine a worker at the server's priority took the CPU the loop needed (what the GIL no
    # longer took from it), and /healthz waited as long as before.
    os.nice(WORKER_NICENESS)
    # A server that is killed cannot stop them, and its fork server lives as long as they do:
    # each worker ends itself when the server's process does, rather than wait forever on a
    # queue nobody writes to (holding the server's stderr open). Linux 5.3+; elsewhere they
    # outlive a killed server.
    try:
        pidfd = os.pidfd_open(server_pid)
    except ProcessLookupError:
        os._exit(0)
    except (OSError, AttributeError):
        return

    def watch() -> None:
        select.select([pidfd], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="server-watch", daemon=True).start()


def worker_pid() -> int:
    """The process a call ran in (what tests and ``start`` ask a worker)."""
    return os.getpid()


class Offload:
    """``processes`` worker processes; ``run`` calls a module-level function in one of them."""

    def __init__(self, processes: int, preload: Sequence[str] = ()) -> None:
        self._processes = processes
        self._preload = list(preload)
        self._executor: ProcessPoolExecutor | None = None

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        # The fork server is one per server process: the first pool's preload is the one used.
        context.set_forkserver_preload(self._preload)
        return ProcessPoolExecutor(
            self._processes,
            mp_context=context,
            initializer=functools.partial(_worker_init, os.getpid()),
        )

    async def start(self) -> None:
        """Start every worker and wait until each answers (imports done, nothing lazy left for
        the first request to pay). Raises ``OSError`` when processes cannot be started."""
        self._executor = self._new_executor()
        loop = asyncio.get_running_loop()
        # Submitted together, so none is idle when the next arrives: each starts a process.
        warm = [loop.run_in_executor(self._executor, worker_pid) for _ in range(self._processes)]
        pids = await asyncio.gather(*warm)
        log.debug("offload processes ready: %s", sorted(set(pids)))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process; raises what ``fn`` raised (its exceptions must be
        picklable), or ``BrokenProcessPool`` when the worker died (the pool is then replaced).

        ``fn`` must be a module-level function; its arguments and its answer are pickled.
        """
        executor = self._executor
        if executor is None:
            raise RuntimeError("the offload pool is not started")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except BrokenProcessPool:
            if self._executor is executor:
                log.error("an offload worker process died; starting a new pool")
                self._executor = self._new_executor()
                await asyncio.to_thread(executor.shutdown, wait=True)
            raise

    async def stop(self) -> None:
        """Let the work under way finish, then end the processes."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
