"""``python -m service``: start the judge server with settings from the environment.

SIGTERM or SIGINT stops it gracefully: no new connections or missions, running missions get
``JUDGE_SHUTDOWN_GRACE_S`` to finish, and whatever is cut short resumes at the next start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Mapping

from aiohttp import web
from pydantic_settings import BaseSettings

from service.app import create_app, doors_settings
from service.http.accesslog import RedactingAccessLogger
from service.settings import Settings, SettingsError

log = logging.getLogger("service")


GC_YOUNG_OBJECTS = 10_000
"""Objects made (less those freed) between two collections of the youngest generation.

Python's default, 700, meant about 270 young collections a second at 2,000 submissions a second;
each moved what the requests in flight held on to the older generations, which were walked in
turn: 0.26 s of collecting for 8,500 submissions under ``bench.intake_bench``, a tenth of the event
loop's CPU. At 10,000: 0.09 s, and a young collection still frees cycles within a few MB of
garbage."""


async def serve(
    settings: Settings, door_settings: Mapping[str, BaseSettings] | None = None
) -> None:
    """Run the server until SIGTERM or SIGINT; logs ``listening on <url>`` once it is ready."""
    # Work proportional to a request runs in threads; a thread holding the GIL is asked to hand
    # it over after this interval, so a shorter one keeps the event loop's answers prompt while
    # a large mission is parsed (the default, 5 ms, compounds over every hop of a request).
    sys.setswitchinterval(0.001)
    if settings.listens_beyond_loopback and not settings.block_private_urls:
        log.warning(
            "listening on %s with JUDGE_BLOCK_PRIVATE_URLS=false: any token holder can make this "
            "server fetch or POST to loopback and private addresses (SSRF); set it to true and "
            "list what missions may reach in JUDGE_ALLOW_PRIVATE",
            settings.host,
        )
    runner = web.AppRunner(
        create_app(settings, door_settings),
        shutdown_timeout=settings.shutdown_grace_s,
        access_log_class=RedactingAccessLogger,
    )
    await runner.setup()  # runs the cleanup contexts' start-up: sweep, resume, workers
    try:
        # Before the address is announced: whoever reads it may signal us at once.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=settings.reuse_port)
        await site.start()
        # What exists now lives as long as the server: out of the collector's sight, so that a
        # full collection (which holds the GIL while it walks every tracked object, and comes
        # while a big document is decoded) walks only what requests made since.
        gc.freeze()
        gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])
        for address in runner.addresses:
            host, port = address[0], address[1]
            shown = f"[{host}]" if ":" in host else host
            log.info("listening on http://%s:%d", shown, port)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
    log.info("stopped")


def quieter_logging() -> None:
    """Log records without what our format never shows: the calling frame (a stack walk per
    record), thread and process names, as the logging HOWTO advises for speed. Every request
    writes an access-log line: this takes 1-3 us off each (of 10-20 us here)."""
    logging._srcfile = None  # the HOWTO names this private attribute for this purpose
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class SecondsOnceFormatter(logging.Formatter):
    """``logging.Formatter``'s default time format (``2026-12-04 13:05:09,123``) with its
    seconds formatted once a second rather than per record: ``time.strftime`` was a tenth of an
    access-log line."""

    _made: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._made  # one tuple: threads see a pair that belongs together
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._made = (second, text)
        return f"{text},{int(record.msecs):03d}"


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main() -> None:
    quieter_logging()
    handler = logging.StreamHandler()
    handler.setFormatter(SecondsOnceFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        settings = Settings.from_env()
        door_settings = doors_settings()  # a door's variable out of range: told the same way
    except SettingsError as e:
        sys.exit(f"judge: {e}")
    asyncio.run(serve(settings, door_settings))


if __name__ == "__main__":
    main()
