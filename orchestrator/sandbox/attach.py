"""The supervisor's stdin/stdout as the engine's attach call hands them over: a socket carrying
Docker's multiplexed stdout/stderr frames. The adapter (docker.py) drives it from its threads
(blocking calls) or, for a request and its answer on a plain socket, from the event loop
(``exchange``: no thread hop). What goes over it is the supervisor protocol, sandbox.py's
business.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import struct
import threading
from typing import Any

MAX_LINE_BYTES = 1 << 20  # a supervisor answer is a few KiB; anything bigger is hostile
_STDERR_KEEP = 4096
_RECV_BYTES = 256 * 1024
_HEADER = struct.Struct(">BxxxL")


class AttachedStream:
    """The supervisor's stdin/stdout, attached before the container started.

    Docker multiplexes stdout and stderr on the socket in frames with an 8-byte header; this reads
    stdout lines and keeps the tail of stderr for diagnostics. Blocking; used from pool threads.
    """

    def __init__(self, sock: Any) -> None:
        self._holder = sock  # keeps the HTTP response (and TLS state) alive
        self._sock = getattr(sock, "_sock", sock)
        # The event loop can wait on a plain socket itself; TLS and ssh transports go by thread.
        self._loop_ok = type(self._sock) is socket.socket and not isinstance(
            self._sock, ssl.SSLSocket
        )
        self._raw = bytearray()  # received, not yet split into frames
        self._stdout = bytearray()
        self.stderr_tail = b""
        self.closed = False
        # Held while a thread reads or writes the socket, so close() never frees a descriptor
        # under a blocked call (the number could be reused by another socket meanwhile). Two
        # locks: a streaming execute writes stdin while another thread waits for output.
        self._io = threading.Lock()
        self._out = threading.Lock()

    def send_line(self, line: bytes) -> None:
        with self._out:
            self._sock.sendall(line + b"\n")

    def read_line(self, timeout_s: float) -> bytes:
        """Return the next stdout line without its newline.

        Raises ``TimeoutError`` after ``timeout_s`` seconds of silence, ``EOFError`` when the
        container or ``close`` closed the stream, ``ValueError`` for a line over
        ``MAX_LINE_BYTES``.
        """
        with self._io:
            return self._read_line(timeout_s)

    def _read_line(self, timeout_s: float) -> bytes:
        # Also bounds a concurrent send (one timeout per socket): a streaming execute's stdin
        # that the supervisor does not take within the execute's own time is a failure anyway.
        self._sock.settimeout(timeout_s)
        while (line := self._next_line()) is None:
            chunk = self._sock.recv(_RECV_BYTES)
            if not chunk:
                raise EOFError("stream closed")
            self._raw += chunk
        return line

    def _next_line(self) -> bytes | None:
        """The next complete stdout line from what was received (frames split, stderr kept in
        its tail), or None when more bytes are needed. Raises ``ValueError`` for a frame or a
        line over ``MAX_LINE_BYTES``."""
        while True:
            nl = self._stdout.find(b"\n")
            if nl >= 0:
                line = bytes(self._stdout[:nl])
                del self._stdout[: nl + 1]
                return line
            if len(self._stdout) > MAX_LINE_BYTES:
                raise ValueError("supervisor line too long")
            if len(self._raw) < _HEADER.size:
                return None
            kind, size = _HEADER.unpack_from(self._raw)
            if size > MAX_LINE_BYTES:
                raise ValueError("frame too large")
            end = _HEADER.size + size
            if len(self._raw) < end:
                return None
            payload = bytes(self._raw[_HEADER.size : end])
            del self._raw[:end]
            if kind == 2:
                self.stderr_tail = (self.stderr_tail + payload)[-_STDERR_KEEP:]
            else:
                self._stdout += payload

    async def exchange(self, line: bytes, timeout_s: float) -> bytes | None:
        """Send ``line`` and return the next stdout line, awaiting the socket on the running
        event loop (no thread); None, having done nothing, when this stream cannot (a TLS or
        ssh transport) or a thread holds it right now: use ``send_line`` and ``read_line``.

        Raises like ``read_line`` (``TimeoutError`` after ``timeout_s`` seconds in all).
        """
        if not self._loop_ok or self.closed:
            return None
        if not self._io.acquire(blocking=False):
            return None
        try:
            if not self._out.acquire(blocking=False):
                return None
            try:
                return await self._exchange_on_loop(line, timeout_s)
            finally:
                self._out.release()
        finally:
            self._io.release()

    async def _exchange_on_loop(self, line: bytes, timeout_s: float) -> bytes:
        loop = asyncio.get_running_loop()
        sock = self._sock
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout_s):
                await loop.sock_sendall(sock, line + b"\n")
                while (answer := self._next_line()) is None:
                    chunk = await loop.sock_recv(sock, _RECV_BYTES)
                    if not chunk:
                        raise EOFError("stream closed")
                    self._raw += chunk
                return answer
        finally:
            if not self.closed:
                # The threads' calls expect a blocking socket (read_line sets its own timeout).
                with contextlib.suppress(OSError):
                    sock.settimeout(None)

    def idle_ok(self) -> bool:
        """Whether an idle stream is still open and silent, without blocking.

        An idle supervisor writes nothing on stdout, so stdout bytes or the end of the stream
        mean the sandbox is gone or misbehaves; stderr frames (its diagnostics, which may trail
        the hello line) are taken in. False when another thread uses the stream.
        """
        if self.closed or self._stdout or not self._io.acquire(blocking=False):
            return False
        try:
            while self._raw or select.select([self._sock], [], [], 0)[0]:
                self._sock.settimeout(0.5)  # a frame that started arriving ends promptly
                kind, payload = self._take_frame()
                if kind != 2:
                    self._stdout += payload
                    return False
                self.stderr_tail = (self.stderr_tail + payload)[-_STDERR_KEEP:]
            return True
        except (OSError, EOFError, ValueError):
            return False
        finally:
            self._io.release()

    def _take_frame(self) -> tuple[int, bytes]:
        """The next whole frame, receiving (blocking) until it is there."""
        self._fill(_HEADER.size)
        kind, size = _HEADER.unpack_from(self._raw)
        if size > MAX_LINE_BYTES:
            raise ValueError("frame too large")
        end = _HEADER.size + size
        self._fill(end)
        payload = bytes(self._raw[_HEADER.size : end])
        del self._raw[:end]
        return kind, payload

    def _fill(self, n: int) -> None:
        while len(self._raw) < n:
            chunk = self._sock.recv(_RECV_BYTES)
            if not chunk:
                raise EOFError("stream closed")
            self._raw += chunk

    def close(self) -> None:
        """Close the stream; a thread blocked reading it wakes up with ``EOFError``."""
        self.closed = True
        with contextlib.suppress(OSError):
            # close() alone does not wake a thread blocked in recv(); shutdown() does.
            self._sock.shutdown(socket.SHUT_RDWR)
        with self._io, self._out:
            with contextlib.suppress(OSError):
                self._sock.close()
            with contextlib.suppress(Exception):
                self._holder.close()


__all__ = ["MAX_LINE_BYTES", "AttachedStream"]
