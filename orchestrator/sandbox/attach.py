"""The supervisor's stdin/stdout as the engine's attach call hands them over: a socket carrying
Docker's multiplexed stdout/stderr frames. Blocking; the adapter (docker.py) drives it from its
threads. What goes over it is the supervisor protocol, sandbox.py's business.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from typing import Any

MAX_LINE_BYTES = 1 << 20  # a supervisor answer is a few KiB; anything bigger is hostile
_STDERR_KEEP = 4096


class AttachedStream:
    """The supervisor's stdin/stdout, attached before the container started.

    Docker multiplexes stdout and stderr on the socket in frames with an 8-byte header; this reads
    stdout lines and keeps the tail of stderr for diagnostics. Blocking; used from pool threads.
    """

    def __init__(self, sock: Any) -> None:
        self._holder = sock  # keeps the HTTP response (and TLS state) alive
        self._sock = getattr(sock, "_sock", sock)
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
        while True:
            nl = self._stdout.find(b"\n")
            if nl >= 0:
                line = bytes(self._stdout[:nl])
                del self._stdout[: nl + 1]
                return line
            if len(self._stdout) > MAX_LINE_BYTES:
                raise ValueError("supervisor line too long")
            kind, payload = self._read_frame()
            if kind == 2:
                self.stderr_tail = (self.stderr_tail + payload)[-_STDERR_KEEP:]
            else:
                self._stdout += payload

    def _read_frame(self) -> tuple[int, bytes]:
        header = self._read_exact(8)
        kind, size = struct.unpack(">BxxxL", header)
        if size > MAX_LINE_BYTES:
            raise ValueError("frame too large")
        return kind, self._read_exact(size)

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("stream closed")
            buf += chunk
        return bytes(buf)

    def idle_ok(self) -> bool:
        """Whether an idle stream is still open and silent, without blocking.

        An idle supervisor writes nothing on stdout, so stdout bytes or the end of the stream
        mean the sandbox is gone or misbehaves; stderr frames (its diagnostics, which may trail
        the hello line) are taken in. False when another thread uses the stream.
        """
        if self.closed or self._stdout or not self._io.acquire(blocking=False):
            return False
        try:
            while select.select([self._sock], [], [], 0)[0]:
                self._sock.settimeout(0.5)  # a frame that started arriving ends promptly
                kind, payload = self._read_frame()
                if kind != 2:
                    self._stdout += payload
                    return False
                self.stderr_tail = (self.stderr_tail + payload)[-_STDERR_KEEP:]
            return True
        except (OSError, EOFError, ValueError):
            return False
        finally:
            self._io.release()

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
