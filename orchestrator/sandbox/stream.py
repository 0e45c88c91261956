"""Streaming executes: a program whose stdin, stdout and stderr are live while it runs.

``Sandbox.stream(req)`` (the way in) sends one ``exec`` with ``"stream":1`` and hands out an
``ExecStream``: stdin bytes and signals go to the program as the caller sends them, its output
comes back as ``(stream, bytes)`` chunks in the order the supervisor relayed them, and the end is
an ``ExecOutcome`` with the usual verdict. The wire format is PROTOCOL.md, "Streaming executes".

One task reads the supervisor's lines (``_pump``) and keeps every chunk (at most the execute's
``output_kib`` in all: the supervisor relays no more), so the result arrives whether or not the
caller iterates; writes go out in order under their own lock, from any task.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from orchestrator.errors import SandboxError
from orchestrator.sandbox.docker import ContainerHandle, DockerAdapter
from orchestrator.sandbox.execute import ExecOutcome, outcome_from_wire

__all__ = ["STDIN_CHUNK_BYTES", "ExecStream"]

# Stdin bytes per control line (base64: 64 KiB of line, well under the supervisor's 1 MiB).
STDIN_CHUNK_BYTES = 48 * 1024
# How long the supervisor may take to answer once the program was killed on the way out.
_KILL_ANSWER_S = 10.0
_SIGKILL = 9


class ExecStream:
    """One running streaming execute, made by ``Sandbox.stream``.

    ``write_stdin``, ``close_stdin`` and ``signal`` may be called from any task while another
    iterates; after the program ended they do nothing.
    """

    def __init__(
        self,
        adapter: DockerAdapter,
        handle: ContainerHandle,
        wire: dict[str, Any],
        timeout_s: float,
    ) -> None:
        self._adapter = adapter
        self._handle = handle
        self._wire = wire
        self._timeout_s = timeout_s
        self._chunks: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._done: asyncio.Future[ExecOutcome] = asyncio.get_running_loop().create_future()
        self._send_lock = asyncio.Lock()
        self._pump_task: asyncio.Task[None] | None = None
        self.stdout_bytes = 0
        self.stderr_bytes = 0

    @classmethod
    def finished(cls, outcome: ExecOutcome) -> ExecStream:
        """A run that is over before it began (e.g. an SE): no chunks, ``outcome`` as result."""
        run = cls.__new__(cls)
        run._chunks = asyncio.Queue()
        run._chunks.put_nowait(None)
        run._done = asyncio.get_running_loop().create_future()
        run._done.set_result(outcome)
        run._send_lock = asyncio.Lock()
        run._pump_task = None
        run.stdout_bytes = run.stderr_bytes = 0
        return run

    @property
    def done(self) -> bool:
        """Whether the program has ended (its outcome is known, or the sandbox failed)."""
        return self._done.done()

    async def start(self) -> None:
        """Send the request and start reading; raises ``SandboxError``."""
        await self._send(json.dumps(self._wire, separators=(",", ":")).encode())
        self._pump_task = asyncio.create_task(self._pump(), name="exec-stream-pump")

    async def write_stdin(self, data: bytes) -> None:
        """Queue ``data`` for the program's stdin (waits while the supervisor holds 1 MiB it
        could not hand over yet)."""
        for i in range(0, len(data), STDIN_CHUNK_BYTES):
            piece = base64.b64encode(data[i : i + STDIN_CHUNK_BYTES]).decode()
            if not await self._control({"op": "stdin", "data": piece}):
                return

    async def close_stdin(self) -> None:
        """End the program's stdin once what was written has been handed over."""
        await self._control({"op": "stdin_close"})

    async def signal(self, signum: int) -> None:
        """Send signal ``signum`` (1..64) to the program's process group."""
        if not 1 <= signum <= 64:
            raise ValueError(f"no such signal: {signum}")
        await self._control({"op": "signal", "signal": signum})

    def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[str, bytes]]:
        while True:
            item = await self._chunks.get()
            if item is None:
                self._chunks.put_nowait(None)  # a second iteration ends at once too
                if self._done.done() and self._done.exception() is not None:
                    raise self._done.exception()  # type: ignore[misc]
                return
            yield item

    async def result(self) -> ExecOutcome:
        """The program's outcome once it ended; raises ``SandboxError`` if the sandbox failed."""
        return await asyncio.shield(self._done)

    async def finish(self) -> None:
        """Make sure the program is over: if it still runs, kill its process group and wait for
        the supervisor's answer. Raises ``SandboxError`` when that answer does not come or the
        sandbox failed on the way."""
        if not self._done.done():
            try:
                await self._control({"op": "signal", "signal": _SIGKILL})
                await asyncio.wait_for(asyncio.shield(self._done), _KILL_ANSWER_S)
            except TimeoutError as e:
                raise SandboxError(
                    "the sandbox did not answer after its streaming execute was stopped",
                    container_id=self._handle.container_id,
                ) from e
        if self._pump_task is not None:
            await self._pump_task
        failure = self._done.exception()
        if failure is not None:  # the sandbox failed: its owner must not use the channel again
            raise failure

    async def _control(self, doc: dict[str, Any]) -> bool:
        """Send one control line unless the program has ended; False when it has."""
        if self._done.done():
            return False
        await self._send(json.dumps(doc, separators=(",", ":")).encode())
        return True

    async def _send(self, line: bytes) -> None:
        async with self._send_lock:
            await self._adapter.send_line(self._handle, line, self._timeout_s)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        try:
            while True:
                raw = await self._adapter.read_line(self._handle, max(0.1, deadline - loop.time()))
                if self._take(raw):
                    return
        except BaseException as e:
            if not self._done.done():
                err = e if isinstance(e, SandboxError) else SandboxError(f"streaming failed: {e!r}")
                self._done.set_exception(err)
            self._chunks.put_nowait(None)
            if not isinstance(e, Exception):
                raise

    def _take(self, raw: bytes) -> bool:
        """One line from the supervisor; True at the answer that ends the execute."""
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise SandboxError(
                "the sandbox supervisor answered garbage", container_id=self._handle.container_id
            ) from e
        if not isinstance(doc, dict):
            raise SandboxError(
                "the sandbox supervisor answered garbage", container_id=self._handle.container_id
            )
        if doc.get("op") == "data":
            stream = doc.get("stream")
            data = base64.b64decode(str(doc.get("data", "")))
            if stream == "stdout":
                self.stdout_bytes += len(data)
            elif stream == "stderr":
                self.stderr_bytes += len(data)
            else:
                raise SandboxError(f"the supervisor relayed an unknown stream {stream!r}")
            self._chunks.put_nowait((stream, data))
            return False
        if not doc.get("ok"):
            raise SandboxError(
                f"the supervisor refused the execute: {doc.get('error', '?')}",
                container_id=self._handle.container_id,
            )
        try:
            outcome = outcome_from_wire(doc)
        except (KeyError, TypeError, ValueError) as e:
            raise SandboxError(
                f"malformed answer from the supervisor: {e}",
                container_id=self._handle.container_id,
            ) from e
        self._done.set_result(outcome)
        self._chunks.put_nowait(None)
        return True
