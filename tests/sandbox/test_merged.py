"""Executes with a merged file on the real engine: stdout and stderr in their own files and, in
one more file, both in the order the program wrote them (PROTOCOL.md, "exec with merged").

The option must change nothing else: the same limits, verdicts, signals and figures as the
plain execute, which each test checks side by side where it can.
"""

from __future__ import annotations

import pytest

from orchestrator.errors import SandboxError
from orchestrator.sandbox.execute import ExecOutcome, ExecRequest
from orchestrator.sandbox.sandbox import Sandbox, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker

ALL = 1 << 20  # record whole files (the protocol allows it; missions ask for at most 8 KiB)

# Writes to stdout and stderr in turns, flushing each write, and before switching streams waits
# until the supervisor has read the last one (FIONREAD on its own end of the pipe says how much
# the pipe still holds): so the writes are at distinct moments, whatever the machine's load.
# That is the order the merged file promises; writes closer together than the supervisor's
# reads may come out stdout first (PROTOCOL.md).
TURNS_PY = """
import fcntl, struct, sys, termios, time
def drained(stream):
    try:
        while struct.unpack("i", fcntl.ioctl(stream.fileno(), termios.FIONREAD, b"0000"))[0]:
            time.sleep(0.0005)
    except OSError:  # a file, not a pipe (the plain execute; gVisor has no FIONREAD for it)
        pass
for i in range(12):
    stream = (sys.stdout, sys.stderr)[i % 2]
    stream.write(f"{('out', 'err')[i % 2]}{i}\\n")
    stream.flush()
    drained(stream)
"""
# The same turns as fast as it can: the order across the streams is then the supervisor's
# reading order, but each stream stays whole and in order, and nothing is lost.
RACE_PY = """
import os
for i in range(3000):
    os.write(1 + i % 2, f"{('o', 'e')[i % 2]}{i}\\n".encode())
"""


def req(*argv: str, merged: str = "both", **kw: object) -> ExecRequest:
    fields: dict[str, object] = {
        "cpu_time_ms": 5000,
        "memory_kib": 256 * 1024,
        "stdout": "out",
        "stderr": "err",
        "record_stdout_bytes": ALL,
        "record_stderr_bytes": ALL,
        "merged": merged,
        "record_merged_bytes": ALL if merged else 0,
        **kw,
    }
    return ExecRequest(argv=argv, **fields)  # type: ignore[arg-type]


async def both(box: Sandbox, *argv: str, **kw: object) -> tuple[ExecOutcome, ExecOutcome]:
    """The same command as a plain execute and with a merged file."""
    return await box.run(req(*argv, merged="", **kw)), await box.run(req(*argv, **kw))


async def least_of_three(box: Sandbox, *argv: str) -> tuple[ExecOutcome, ExecOutcome]:
    """`both` three times: the plain and the merged outcome with the least memory of each."""
    runs = [await both(box, *argv) for _ in range(3)]
    plain = min((pair[0] for pair in runs), key=lambda outcome: outcome.meta.memory_kib)
    merged = min((pair[1] for pair in runs), key=lambda outcome: outcome.meta.memory_kib)
    return plain, merged


async def test_the_merged_file_holds_both_streams_in_write_order(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        assert "merged" in box.features
        plain, merged = await both(box, "python3", "-c", TURNS_PY)
        listed = await box.run(
            ExecRequest(argv=("cat", "both"), stdout="cat", record_stdout_bytes=ALL)
        )
    lines = [f"{('out', 'err')[i % 2]}{i}\n" for i in range(12)]
    assert merged.meta.status == "", merged.meta
    assert merged.merged.decode() == "".join(lines)
    assert merged.stdout.decode() == "".join(lines[0::2]) == plain.stdout.decode()
    assert merged.stderr.decode() == "".join(lines[1::2]) == plain.stderr.decode()
    assert listed.stdout == merged.merged  # a file in the sandbox like any other
    assert plain.merged_b64 == ""
    assert plain.meta.status == ""


async def test_fast_turns_lose_nothing_and_keep_each_streams_order(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        outcome = await box.run(req("python3", "-c", RACE_PY))
    lines = outcome.merged.decode().splitlines(keepends=True)
    assert outcome.meta.status == ""
    assert "".join(x for x in lines if x[0] == "o") == outcome.stdout.decode()
    assert "".join(x for x in lines if x[0] == "e") == outcome.stderr.decode()
    assert outcome.stdout.decode() == "".join(f"o{i}\n" for i in range(0, 3000, 2))
    assert len(lines) == 3000


async def test_output_over_the_largest_file_is_ole_as_without_it(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        # yes writes without end: SIGXFSZ from the kernel (plain) or the supervisor (merged).
        flood_plain, flood = await both(box, "yes", output_kib=64)
        small_plain, small = await both(box, "yes", output_kib=1024, file_size_kib=16)
        err_plain, err = await both(box, "sh", "-c", "yes >&2", file_size_kib=16)
        # Exactly the limit is allowed; the stderr file has its own.
        exact_plain, exact = await both(
            box, "sh", "-c", "head -c 16384 /dev/zero; head -c 100 /dev/zero >&2", file_size_kib=16
        )
        # Python ignores SIGXFSZ: its write fails (plain: an exception, exit 1) or cannot fail
        # (merged: a pipe); OLE either way. Over and gone before the supervisor read it: OLE.
        py_plain, py = await both(box, "python3", "-c", "print('x' * 40000)", file_size_kib=16)
        gone_plain, gone = await both(box, "head", "-c", "20000", "/dev/zero", file_size_kib=16)
    for plain, merged in ((flood_plain, flood), (small_plain, small), (err_plain, err)):
        assert merged.meta.status == plain.meta.status == "OLE"
        assert merged.meta.message == plain.meta.message
        assert merged.meta.signal == plain.meta.signal == 25
    assert flood.meta.message == "output limit exceeded (64 KiB)"
    assert flood.stdout == flood_plain.stdout == b"y\n" * (32 * 1024)
    assert flood.merged == flood.stdout  # nothing beyond what the stream's file got
    assert small.meta.message == "file size limit exceeded (16 KiB)"
    assert len(small.stdout) == len(small.merged) == 16 * 1024
    assert len(err.stderr) == 16 * 1024
    assert err.stdout == b""
    assert exact.meta.status == exact_plain.meta.status == ""
    assert (len(exact.stdout), len(exact.stderr), len(exact.merged)) == (16384, 100, 16384)
    for plain, merged in ((py_plain, py), (gone_plain, gone)):
        assert (merged.meta.status, merged.meta.message) == (
            plain.meta.status,
            plain.meta.message,
        ), (plain, merged)
        assert merged.meta.status == "OLE"
        assert len(merged.stdout) == 16 * 1024


async def test_verdicts_signals_and_codes_are_the_plain_executes(runtime: SandboxRuntime) -> None:
    programs: list[tuple[tuple[str, ...], dict[str, object]]] = [
        (("sh", "-c", "echo hi; exit 3"), {}),
        (("sh", "-c", "echo x >&2; kill -SEGV $$"), {}),
        # (A real-time limit well beyond: a loop starved on a busy machine must hit CPU time.)
        (("sh", "-c", "while :; do :; done"), {"cpu_time_ms": 300, "wall_time_limit_ms": 6000}),
        (("sleep", "5"), {"wall_time_limit_ms": 300}),
        # (Growing a MiB at a time: the supervisor's poll, not the sandbox's fence, stops it.)
        (
            ("python3", "-c", "b = [bytearray(1 << 20) for _ in range(200)]; print(len(b))"),
            {"memory_kib": 65536},
        ),
        (("sh", "-c", "for i in $(seq 12); do sleep 1 & done; wait"), {"process_limit": 5}),
        (("no-such-command",), {}),
    ]
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        pairs = [await both(box, *argv, **kw) for argv, kw in programs]
    for (argv, _), (plain, merged) in zip(programs, pairs, strict=True):
        p, m = plain.meta, merged.meta
        assert (m.status, m.message, m.exit_code, m.signal) == (
            p.status,
            p.message,
            p.exit_code,
            p.signal,
        ), argv
        assert merged.merged == merged.stderr + merged.stdout or merged.merged == (
            merged.stdout + merged.stderr
        ), argv
    assert [pair[1].meta.status for pair in pairs] == ["RE", "RE", "TLE", "TLE", "MLE", "RE", "RE"]


async def test_memory_and_time_are_the_commands_alone(runtime: SandboxRuntime) -> None:
    """The supervisor reading the pipes and writing the files is not counted: a program's
    figures match the plain execute's (within the noise of two runs)."""
    alloc = "b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); print('ok')"
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        # (gVisor's figure for one tiny program varies by 1-2 MiB from run to run; the least of
        # three runs of each is steady, and a supervisor counted in would raise all three.)
        small_plain, small = await least_of_three(box, "true")
        big_plain, big = await least_of_three(box, "python3", "-c", alloc)
        # Much output through the pipes, little CPU time of the program's own.
        busy_plain, busy = await both(
            box,
            "head",
            "-c",
            str(16 << 20),
            "/dev/zero",
            record_stdout_bytes=0,
            record_merged_bytes=0,
        )
    assert abs(small.meta.memory_kib - small_plain.meta.memory_kib) <= 1536, (small, small_plain)
    assert abs(big.meta.memory_kib - big_plain.meta.memory_kib) <= 2048, (big, big_plain)
    assert big.meta.memory_kib >= 64 * 1024
    assert busy.meta.status == busy_plain.meta.status == ""
    if runtime.config.runtime != "runsc":
        # (gVisor charges a program more CPU time for writing into a pipe than into a file: 16
        # MiB cost it 0.2-0.6 s more here. That is the program's own system time, PROTOCOL.md.)
        assert busy.meta.cpu_time_ms <= busy_plain.meta.cpu_time_ms + 150, (busy, busy_plain)


async def test_files_shared_missing_or_refused(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        script = "echo a; echo b >&2; echo c"
        shared = await box.run(req("sh", "-c", script, stderr="./out"))
        quiet = await box.run(req("sh", "-c", script, stdout="", stderr=""))
        await box.run(ExecRequest(argv=("ln", "-s", "/etc/passwd", "link")))
        linked = await box.run(req("true", merged="link"))
        no_stdin = await box.run(req("cat", stdin="missing", merged="link"))
        same = await box.run(req("true", merged="./out"))
        listed = await box.run(
            ExecRequest(argv=("readlink", "link"), stdout="ls", record_stdout_bytes=ALL)
        )
    assert shared.stdout == shared.merged == b"a\nb\nc\n"
    assert shared.meta.status == ""
    assert (quiet.stdout, quiet.stderr) == (b"", b"")
    assert sorted(quiet.merged.splitlines()) == [b"a", b"b", b"c"]
    assert (linked.meta.status, linked.meta.message) == (
        "SE",
        "cannot open merged file 'link': is a symbolic link (refused)",
    )
    assert no_stdin.meta.message == "stdin file 'missing' not found"  # the child's order
    assert (same.meta.status, same.meta.message) == (
        "SE",
        "cannot open merged file './out': it is also the stdout or stderr file (refused)",
    )
    assert listed.stdout == b"/etc/passwd\n"  # left alone


async def test_the_supervisor_refuses_merged_with_a_stream_or_the_same_name(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        with pytest.raises(ValueError, match="streaming"):
            async with box.stream(ExecRequest(argv=("true",), merged="both")):
                pass
        with pytest.raises(SandboxError, match="'merged' must name a file other than"):
            await box.run(req("true", merged="out"))
