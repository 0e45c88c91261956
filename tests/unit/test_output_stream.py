"""How a running job's stdout is cut into WebGME output segments."""

from __future__ import annotations

from service.frontdoors.executor import MAX_OUTPUT_CHARS, MIN_POLL_MS, OutputStream


def test_segments_by_line_count_keep_every_byte() -> None:
    stream = OutputStream("t", "h", interval_ms=-1, segment_lines=2)
    assert stream.take(b"one\n") is None  # one line: not yet
    assert stream.take(b"one\ntwo\n") == "one\ntwo\n"
    assert stream.take(b"one\ntwo\nthree") is None
    assert stream.take(b"one\ntwo\nthree\n", final=True) == "three\n"
    assert stream.take(b"one\ntwo\nthree\n", final=True) is None  # nothing new


def test_interval_segments_and_a_character_cut_in_half() -> None:
    stream = OutputStream("t", "h", interval_ms=1, segment_lines=-1)
    stream.last -= 1  # the interval has passed
    snow = "☃".encode()
    first = stream.take(b"a" + snow[:2])
    assert first == "a"  # half a character waits for its end
    stream.last -= 1
    assert stream.take(b"a" + snow + b"b") == "☃b"
    assert stream.take(b"a" + snow + b"b") is None  # no new output, no segment


def test_output_beyond_the_cap_is_not_streamed_and_polls_are_bounded() -> None:
    stream = OutputStream("t", "h", interval_ms=1, segment_lines=1)
    big = b"x\n" * MAX_OUTPUT_CHARS
    text = stream.take(big)
    assert text is not None
    assert len(text) == MAX_OUTPUT_CHARS
    assert stream.take(big, final=True) is None
    assert stream.poll_s == MIN_POLL_MS / 1000
