"""The server's log lines keep the standard time format while making it once a second."""

from __future__ import annotations

import logging

from service.__main__ import LOG_FORMAT, SecondsOnceFormatter


def test_times_read_as_the_standard_formatter_writes_them() -> None:
    ours, standard = SecondsOnceFormatter(LOG_FORMAT), logging.Formatter(LOG_FORMAT)
    record = logging.LogRecord("judge", logging.INFO, __file__, 1, "hello %s", ("x",), None)
    for created in (1_796_390_000.0, 1_796_390_000.999, 1_796_390_001.25, 1_796_389_999.5):
        record.created = created
        record.msecs = (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)
    assert ours.formatTime(record, "%H") == standard.formatTime(record, "%H")
