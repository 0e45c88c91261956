"""The server's batched log output: INFO lines wait for the periodic flush, a WARNING takes
everything before it out at once, and the flusher writes what is left when it stops."""

from __future__ import annotations

import asyncio
import io
import logging

from service.logs import BatchedStreamHandler, flush_every


class Stream(io.StringIO):
    """What reached the "file": text only up to the last flush."""

    def __init__(self) -> None:
        super().__init__()
        self.out = ""

    def flush(self) -> None:
        self.out = self.getvalue()


def logger(stream: Stream) -> tuple[logging.Logger, BatchedStreamHandler]:
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger(f"test-logs-{id(stream)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log, handler


def test_info_waits_and_a_warning_writes_everything_before_it() -> None:
    stream = Stream()
    log, _ = logger(stream)
    log.info("one")
    log.info("two")
    assert stream.out == ""
    log.warning("three")
    assert stream.out == "INFO one\nINFO two\nWARNING three\n"


async def test_the_flusher_writes_periodically_and_when_it_stops() -> None:
    stream = Stream()
    log, handler = logger(stream)
    flusher = asyncio.create_task(flush_every(handler, 0.01))
    log.info("one")
    for _ in range(500):  # polled: the flusher's period is its own
        if stream.out:
            break
        await asyncio.sleep(0.01)
    assert stream.out == "INFO one\n"
    log.info("two")
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    assert stream.out == "INFO one\nINFO two\n"
