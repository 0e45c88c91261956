"""The attached stream's round trip on the event loop (``AttachedStream.exchange``), against a
socket pair playing the engine: Docker's multiplexed frames, split and interleaved as the engine
may send them. Pure logic: no engine needed."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from orchestrator.sandbox.attach import MAX_LINE_BYTES, AttachedStream


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, engine = socket.socketpair()
    yield ours, engine
    ours.close()
    engine.close()


async def answer_with(engine: socket.socket, *pieces: bytes) -> bytes:
    """Read the request line on the engine's side, then send ``pieces`` one by one (each its
    own write, so the reader sees them arrive apart)."""
    loop = asyncio.get_running_loop()
    engine.setblocking(False)
    request = b""
    while not request.endswith(b"\n"):
        request += await loop.sock_recv(engine, 4096)
    for piece in pieces:
        await loop.sock_sendall(engine, piece)
        await asyncio.sleep(0.001)
    return request


async def test_an_answer_in_split_frames_with_stderr_between(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, engine = pair
    stream = AttachedStream(ours)
    answer = frame(1, b'{"ok":true,') + frame(2, b"diag\n") + frame(1, b'"op":"pong"}\n')
    # The bytes arrive cut anywhere, even inside a frame header.
    pieces = [answer[:3], answer[3:15], answer[15:]]
    got, request = await asyncio.gather(
        stream.exchange(b'{"op":"ping"}', 5), answer_with(engine, *pieces)
    )
    assert request == b'{"op":"ping"}\n'
    assert got == b'{"ok":true,"op":"pong"}'
    assert stream.stderr_tail == b"diag\n"


async def test_lines_beyond_the_answer_are_kept_for_the_next_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, engine = pair
    stream = AttachedStream(ours)
    both = frame(1, b"first\nsecond\n")
    got, _ = await asyncio.gather(stream.exchange(b"x", 5), answer_with(engine, both))
    assert got == b"first"
    # The blocking reader (a thread's) finds the second line already received.
    assert await asyncio.to_thread(stream.read_line, 1) == b"second"


async def test_the_socket_is_blocking_again_for_the_threads_afterwards(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, engine = pair
    stream = AttachedStream(ours)
    await asyncio.gather(stream.exchange(b"x", 5), answer_with(engine, frame(1, b"ok\n")))
    assert ours.gettimeout() is None
    engine.setblocking(True)
    engine.sendall(frame(1, b"later\n"))
    assert await asyncio.to_thread(stream.read_line, 1) == b"later"


async def test_silence_is_a_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _engine = pair
    stream = AttachedStream(ours)
    with pytest.raises(TimeoutError):
        await stream.exchange(b"x", 0.05)


async def test_the_end_of_the_stream_is_eof(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, engine = pair
    stream = AttachedStream(ours)
    engine.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        await stream.exchange(b"x", 5)


async def test_an_oversized_frame_is_refused(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, engine = pair
    stream = AttachedStream(ours)
    header = struct.pack(">BxxxL", 1, MAX_LINE_BYTES + 1)
    with pytest.raises(ValueError, match="frame too large"):
        await asyncio.gather(stream.exchange(b"x", 5), answer_with(engine, header))


async def test_close_from_another_thread_wakes_a_waiting_exchange(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _engine = pair
    stream = AttachedStream(ours)
    waiting = asyncio.create_task(stream.exchange(b"x", 30))
    await asyncio.sleep(0.05)
    closer = threading.Thread(target=stream.close)
    closer.start()
    with pytest.raises(EOFError):
        await asyncio.wait_for(waiting, 5)
    await asyncio.to_thread(closer.join, 5)
    assert not closer.is_alive()
    assert stream.closed
    assert await stream.exchange(b"x", 1) is None  # closed: nothing is sent


async def test_a_stream_a_thread_holds_is_left_to_the_threads(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, engine = pair
    stream = AttachedStream(ours)
    stream._io.acquire()
    try:
        assert await stream.exchange(b"x", 1) is None
    finally:
        stream._io.release()
    engine.setblocking(False)
    with pytest.raises(BlockingIOError):
        engine.recv(10)  # nothing was sent


async def test_a_transport_that_is_no_plain_socket_goes_by_thread() -> None:
    class Channel:  # e.g. an ssh channel: has the socket API, is no socket.socket
        def sendall(self, data: bytes) -> None:
            raise AssertionError("must not be used from the event loop")

    assert await AttachedStream(Channel()).exchange(b"x", 1) is None


async def test_idle_ok_takes_in_trailing_stderr_and_refuses_stdout(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, engine = pair
    stream = AttachedStream(ours)
    await asyncio.gather(
        stream.exchange(b"x", 5), answer_with(engine, frame(1, b"ok\n") + frame(2, b"late"))
    )
    assert stream.idle_ok()
    assert stream.stderr_tail.endswith(b"late")
    engine.setblocking(True)
    engine.sendall(frame(1, b"unasked\n"))
    await asyncio.sleep(0.05)
    assert not stream.idle_ok()
