"""The executor door's pure parts: output segments of a running job, result patterns."""

from __future__ import annotations

from service.frontdoors.webgme.executor import MAX_OUTPUT_CHARS, MIN_POLL_MS, OutputStream, matches


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


def test_result_patterns_read_like_webgme() -> None:
    assert matches("anything/at/all", [])
    assert matches("out/a.txt", ["*.txt"])  # a pattern without '/' also takes base names
    assert not matches("out/a.txt", ["out/*.log"])
    assert matches("log/x.txt", ["log/**/*"])  # ExecutorPlugin's 'logs' artifact
    assert matches("log/a/b/x.txt", ["log/**/*"])
    assert not matches("other/x.txt", ["log/**/*"])
    assert not matches("out/a/b.txt", ["out/*"])
    assert matches("new_name.json", ["new_name.json"])
    assert matches("r1.csv", ["r[0-9].csv"])
    assert not matches("rx.csv", ["r[!a-z].csv"])
    assert matches("a+b (1).txt", ["a+b (?).txt"])
