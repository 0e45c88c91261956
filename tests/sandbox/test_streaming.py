"""Streaming executes on the real engine: a live stdin, output as written, signals, limits.

A streaming execute relays the program's stdio over the supervisor's channel while it runs
(PROTOCOL.md, "Streaming executes"; ``Sandbox.stream``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from orchestrator.errors import SandboxError
from orchestrator.sandbox.sandbox import ExecRequest, SandboxRuntime
from orchestrator.sandbox.stream import ExecStream
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker

# Echoes each line back at once, upper-cased, until EOF.
ECHO_PY = (
    "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line.upper()); sys.stdout.flush()\n"
)
# Writes to stdout and stderr in turns, with a pause between writes.
TURNS_SH = "for i in 1 2 3; do echo out$i; sleep 0.05; echo err$i >&2; sleep 0.05; done"
# Says it is ready, then waits for SIGINT and leaves with code 3.
TRAP_SH = "trap 'echo bye; exit 3' INT; echo ready; while :; do sleep 0.01; done"


def req(*argv: str, **kw: object) -> ExecRequest:
    limits: dict[str, object] = {"cpu_time_ms": 5000, "memory_kib": 256 * 1024, **kw}
    return ExecRequest(argv=argv, **limits)  # type: ignore[arg-type]


class GivingUp(Exception):
    """The caller leaves a stream early."""

    def __init__(self, run: ExecStream) -> None:
        super().__init__("the caller gives up")
        self.run = run


async def next_chunk(chunks: object) -> tuple[str, bytes]:
    return await asyncio.wait_for(anext(chunks), 10)  # type: ignore[call-overload]


async def test_an_echo_loop_answers_each_line_while_it_runs(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        async with box.stream(req("python3", "-c", ECHO_PY, output_kib=64)) as run:
            chunks = aiter(run)
            for word in (b"one\n", b"two\n", b"three\n"):
                await run.write_stdin(word)
                # The answer comes before the next line is even sent: a live pipe.
                assert await next_chunk(chunks) == ("stdout", word.upper())
            await run.close_stdin()
            rest = [c async for c in chunks]
            outcome = await run.result()
        after = await box.run(ExecRequest(argv=("true",)))
    assert rest == []
    assert outcome.meta.status == "", outcome.meta
    assert (run.stdout_bytes, run.stderr_bytes) == (len(b"one\ntwo\nthree\n"), 0)
    assert after.meta.status == ""  # the sandbox goes on


async def test_stdout_and_stderr_come_in_the_order_written(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        async with box.stream(req("sh", "-c", TURNS_SH)) as run:
            got = [c async for c in run]
            outcome = await run.result()
    assert got == [
        (stream, f"{stream[3:]}{i}\n".encode())
        for i in (1, 2, 3)
        for stream in ("stdout", "stderr")
    ]
    assert outcome.meta.status == ""


async def test_a_signal_reaches_the_program(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        async with box.stream(req("sh", "-c", TRAP_SH)) as run:
            chunks = aiter(run)
            assert await next_chunk(chunks) == ("stdout", b"ready\n")
            await run.signal(2)
            assert [c async for c in chunks] == [("stdout", b"bye\n")]
            trapped = await run.result()
        async with box.stream(req("sleep", "30")) as run:
            await run.signal(15)
            killed = await run.result()
    assert (trapped.meta.status, trapped.meta.exit_code) == ("RE", 3)
    assert (killed.meta.status, killed.meta.signal) == ("RE", 15)
    assert killed.meta.message == "killed by signal 15 (SIGTERM)"


async def test_limits_hold_while_streaming(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        async with box.stream(req("sh", "-c", "while :; do :; done", cpu_time_ms=300)) as run:
            spun = await run.result()
        async with box.stream(req("sleep", "30", wall_time_limit_ms=400)) as run:
            slept = await run.result()
        async with box.stream(req("yes", output_kib=64)) as run:
            flood = b"".join([chunk async for _stream, chunk in run])
            flooded = await run.result()
        async with box.stream(
            req("sh", "-c", "for i in $(seq 12); do sleep 1 & done; wait", process_limit=5)
        ) as run:
            forked = await run.result()
    assert spun.meta.status == "TLE", spun.meta
    assert (slept.meta.status, slept.meta.message) == ("TLE", "real time limit exceeded (400 ms)")
    assert (flooded.meta.status, flooded.meta.message) == ("OLE", "output limit exceeded (64 KiB)")
    assert flood == b"y\n" * (32 * 1024)  # exactly the limit, relayed in order
    assert (forked.meta.status, forked.meta.message) == ("RE", "process limit exceeded (5)")


async def test_a_caller_that_never_reads_still_gets_the_result(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        async with box.stream(req("yes", "0123456789", output_kib=2048)) as run:
            outcome = await asyncio.wait_for(run.result(), 30)
        async with box.stream(
            req("sh", "-c", "while :; do echo x; sleep 0.01; done", wall_time_limit_ms=500)
        ) as run:
            slow = await asyncio.wait_for(run.result(), 30)
    assert outcome.meta.status == "OLE"
    assert run.stdout_bytes > 0
    assert (slow.meta.status, slow.meta.message) == ("TLE", "real time limit exceeded (500 ms)")


async def test_the_supervisor_is_not_held_up_by_a_channel_nobody_reads(
    runtime: SandboxRuntime,
) -> None:
    """Below the Python API: nobody reads the channel for a while, the program floods it; the
    supervisor must still stop the program at its real-time limit (its queue is bounded and
    the program waits in write)."""
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        adapter, handle = box._runtime.adapter, box._handle
        wire = {**req("yes", output_kib=1 << 20, wall_time_limit_ms=500).to_wire(), "stream": 1}
        await adapter.send_line(handle, json.dumps(wire).encode(), 10)
        await asyncio.sleep(2)  # not reading: the program can only fill the pipes and queues
        relayed, answer = 0, None
        while answer is None:
            doc = json.loads(await adapter.read_line(handle, 10))
            if doc.get("op") == "data":
                relayed += len(doc["data"]) * 3 // 4
            else:
                answer = doc
    assert answer["meta"]["status"] == "TLE", answer
    assert answer["meta"]["real-time-usage"] < 1500, answer  # stopped on time, not at 2 s
    assert relayed < 4 << 20  # what fit in the queues, not 2 s of `yes`


async def test_leaving_early_kills_the_program_and_the_sandbox_goes_on(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:

        async def give_up() -> ExecStream:
            async with box.stream(req("sh", "-c", "echo started; sleep 30")) as run:
                assert await next_chunk(aiter(run)) == ("stdout", b"started\n")
                raise GivingUp(run)

        with pytest.raises(GivingUp) as gave_up:
            await give_up()
        stopped = await gave_up.value.run.result()
        after = await box.run(ExecRequest(argv=("echo", "ok"), stdout="o", record_stdout_bytes=8))
        assert box.alive
    assert stopped.meta.signal == 9
    assert after.stdout == b"ok\n"


async def test_stdin_larger_than_the_supervisors_queue_arrives_whole(
    runtime: SandboxRuntime,
) -> None:
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB: three times what the supervisor queues
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        async with box.stream(req("sh", "-c", "sleep 0.3; md5sum")) as run:
            await run.write_stdin(data)
            await run.close_stdin()
            out = b"".join([chunk async for _stream, chunk in run])
            outcome = await run.result()
    assert outcome.meta.status == "", outcome.meta
    assert out.split()[0].decode() == hashlib.md5(data).hexdigest()


async def test_a_streaming_execute_has_no_redirections(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        with pytest.raises(ValueError, match="no redirections"):
            async with box.stream(req("true", stdout="out")):
                pass
        assert "stream" in box.features


async def test_a_sandbox_that_dies_mid_stream_is_a_sandbox_error(runtime: SandboxRuntime) -> None:
    box = await runtime.create(DEFAULT_IMAGE)
    try:

        async def stream_while_it_goes() -> ExecStream:
            async with box.stream(req("sh", "-c", "echo started; sleep 30")) as run:
                assert await next_chunk(aiter(run)) == ("stdout", b"started\n")
                # The engine removes the container under the stream.
                await runtime.adapter.remove_sandbox(box._handle)
                with pytest.raises(SandboxError):
                    await run.result()
                assert [c async for c in run] == []
            return run

        with pytest.raises(SandboxError):
            await stream_while_it_goes()
        assert not box.alive
        with pytest.raises(SandboxError):
            await box.run(ExecRequest(argv=("true",)))
    finally:
        await box.close()
