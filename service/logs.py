"""The server's log output: one line per record on standard error, written in batches.

Every request writes an access-log line. Written and flushed one by one, each line is a
``write(2)`` on standard error (and a wake-up of whatever reads it: a terminal, journald, the
engine's log driver) per request. Here records go to a buffer instead; ``flush_every`` writes
it out at most ``FLUSH_S`` after a record came, and a WARNING or worse is written at once,
after every line before it. The cost: a process killed outright loses at most ``FLUSH_S`` of
INFO lines; a stopping server writes everything.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FLUSH_S = 0.1
BUFFER_BYTES = 64 * 1024


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` that does not flush after each record below ``WARNING``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.flush()
        except RecursionError:  # as StreamHandler.emit: never hidden
            raise
        except Exception:
            self.handleError(record)


def quieter_logging() -> None:
    """Log records without what our format never shows: the calling frame (a stack walk per
    record), thread and process names, as the logging HOWTO advises for speed. Every request
    writes an access-log line: this takes 1-3 us off each (of 10-20 us here)."""
    logging._srcfile = None  # the HOWTO names this private attribute for this purpose
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure() -> BatchedStreamHandler:
    """INFO and above to standard error through a buffer of its own (``sys.stderr`` is
    line-buffered: a write per line); returns the handler ``flush_every`` flushes."""
    quieter_logging()
    # Lives as long as the process; closing it would not close standard error (closefd).
    stream = open(
        sys.stderr.fileno(),
        "w",
        buffering=BUFFER_BYTES,
        encoding="utf-8",
        errors="backslashreplace",
        closefd=False,
    )
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    return handler


async def flush_every(handler: logging.Handler, interval_s: float = FLUSH_S) -> None:
    """Flush ``handler`` every ``interval_s`` until cancelled, and once more then."""
    try:
        while True:
            await asyncio.sleep(interval_s)  # a period, not a synchronisation
            handler.flush()
    finally:
        handler.flush()
