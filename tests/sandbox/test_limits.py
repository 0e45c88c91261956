"""The per-execute limit extensions on the real engine: real time, processes, file size, stack.

Each is shown to act (a program over it gets the documented verdict) and to stay out of the
way when absent (the same program passes with today's rules).
"""

from __future__ import annotations

import pytest

from orchestrator.sandbox.sandbox import ExecRequest, Sandbox, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker

MIB = 1024

# Recurses n levels deep with a 1 KiB frame each: n KiB of stack.
DEEP_C = b"""
#include <stdio.h>
#include <stdlib.h>
static int down(int n) { volatile char frame[1024]; frame[0] = (char)n;
                         return n ? down(n - 1) + frame[0] : 0; }
int main(int argc, char **argv) { printf("%d\\n", down(atoi(argv[1]))); return 0; }
"""

# Starts n threads that each sleep a little, then joins them.
THREADS_PY = (
    "import sys, threading, time\n"
    "ts = [threading.Thread(target=time.sleep, args=(0.3,)) for _ in range(int(sys.argv[1]))]\n"
    "[t.start() for t in ts]\n"
    "[t.join() for t in ts]\n"
)


def sh(script: str, **kw: object) -> ExecRequest:
    return ExecRequest(argv=("sh", "-c", script), **kw)  # type: ignore[arg-type]


async def test_the_wall_time_limit_is_taken_as_given(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        short = await box.run(
            ExecRequest(argv=("sleep", "10"), cpu_time_ms=1000, wall_time_limit_ms=300)
        )
        # Today's 1.5 x 1000 ms would stop this sleeper; its own limit lets it finish.
        long = await box.run(
            ExecRequest(argv=("sleep", "2"), cpu_time_ms=1000, wall_time_limit_ms=5000)
        )
        default = await box.run(ExecRequest(argv=("sleep", "2"), cpu_time_ms=1000))
    assert (short.meta.status, short.meta.message) == ("TLE", "real time limit exceeded (300 ms)")
    assert 300 <= short.meta.real_time_ms < 1000, short.meta
    assert long.meta.status == "", long.meta
    assert long.meta.real_time_ms >= 2000
    assert (default.meta.status, default.meta.message) == (
        "TLE",
        "real time limit exceeded (1500 ms)",
    )


async def test_too_many_processes_are_stopped(runtime: SandboxRuntime) -> None:
    script = "for i in $(seq 12); do sleep 1 & done; wait"
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        over = await box.run(sh(script, process_limit=6))
        under = await box.run(sh(script, process_limit=20))
        unlimited = await box.run(sh(script))
    assert (over.meta.status, over.meta.message) == ("RE", "process limit exceeded (6)")
    assert over.meta.signal == 9
    assert over.meta.real_time_ms < 1000, over.meta  # stopped, not waited for
    assert under.meta.status == "", under.meta
    assert unlimited.meta.status == "", unlimited.meta


async def test_threads_count_as_processes(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        over = await box.run(ExecRequest(argv=("python3", "-c", THREADS_PY, "10"), process_limit=4))
        under = await box.run(
            ExecRequest(argv=("python3", "-c", THREADS_PY, "10"), process_limit=16)
        )
    assert (over.meta.status, over.meta.message) == ("RE", "process limit exceeded (4)")
    assert under.meta.status == "", under.meta


async def test_a_file_over_the_file_size_limit_is_sigxfsz(runtime: SandboxRuntime) -> None:
    write = "open('big', 'wb').write(bytes(200 * 1024))"
    dd = ("dd", "if=/dev/zero", "of=big", "bs=1024", "count=200")
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        over = await box.run(ExecRequest(argv=dd, file_size_kib=100))
        # Python ignores SIGXFSZ: its write fails (EFBIG) and it exits 1.
        ignored = await box.run(ExecRequest(argv=("python3", "-c", write), file_size_kib=100))
        redirected = await box.run(
            ExecRequest(
                argv=("head", "-c", str(200 * 1024), "/dev/zero"), stdout="out", file_size_kib=100
            )
        )
        size = await box.run(sh("wc -c < out", stdout="n", record_stdout_bytes=64))
        under = await box.run(ExecRequest(argv=("python3", "-c", write), file_size_kib=300))
        default = await box.run(ExecRequest(argv=("python3", "-c", write)))
    for hit in (over, redirected):
        assert (hit.meta.status, hit.meta.message) == (
            "OLE",
            "file size limit exceeded (100 KiB)",
        ), hit.meta
        assert hit.meta.signal == 25  # SIGXFSZ
    assert size.stdout == b"102400\n"
    assert (ignored.meta.status, ignored.meta.exit_code, ignored.meta.signal) == ("RE", 1, 0)
    assert under.meta.status == "", under.meta
    assert default.meta.status == "", default.meta


async def test_the_output_limit_still_rules_when_it_is_lower(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        out = await box.run(
            ExecRequest(
                argv=("head", "-c", str(200 * 1024), "/dev/zero"),
                stdout="out",
                output_kib=64,
                file_size_kib=1024,
            )
        )
    assert (out.meta.status, out.meta.message) == ("OLE", "output limit exceeded (64 KiB)")


async def _deep(box: Sandbox) -> None:
    await box.write_file("deep.c", DEEP_C)
    built = await box.run(
        ExecRequest(argv=("gcc", "-O0", "-o", "deep", "deep.c"), memory_kib=256 * MIB)
    )
    assert built.meta.status == "", built.meta


async def test_a_stack_over_the_stack_limit_overflows(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await _deep(box)
        over = await box.run(ExecRequest(argv=("./deep", "4096"), stack_kib=1024))
        under = await box.run(
            ExecRequest(argv=("./deep", "4096"), stack_kib=16 * MIB, memory_kib=64 * MIB)
        )
        # Today's rule: the memory limit (here 64 MiB) is the stack.
        default = await box.run(ExecRequest(argv=("./deep", "32768"), memory_kib=64 * MIB))
        tight = await box.run(
            ExecRequest(
                argv=("sh", "-c", "ulimit -s"), stack_kib=1234, stdout="s", record_stdout_bytes=64
            )
        )
    assert (over.meta.status, over.meta.signal) == ("RE", 11), over.meta
    assert over.meta.message == "killed by signal 11 (SIGSEGV)"
    assert under.meta.status == "", under.meta
    assert default.meta.status == "", default.meta
    assert tight.stdout == b"1234\n"
