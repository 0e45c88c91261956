"""Memory held in any form counts toward ``memory_limit``: anonymous, memfd, ``MAP_SHARED`` and
``/dev/shm``. Files written into ``/box`` and ``/tmp`` do not: they are bounded by the sizes of
those mounts (``JUDGE_SANDBOX_BOX_KIB``, ``JUDGE_SANDBOX_TMP_KIB``) instead."""

from __future__ import annotations

import pytest

from orchestrator.sandbox.sandbox import ExecRequest, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker

MEMFD = """
import os
fd = os.memfd_create("hoard")
chunk = b"x" * (1 << 20)
for _ in range(120):
    os.write(fd, chunk)
print("held 120 MiB")
"""

SHARED_MAP = """
import mmap
m = mmap.mmap(-1, 120 << 20)  # MAP_SHARED | MAP_ANONYMOUS
for i in range(0, len(m), 4096):
    m[i] = 1
print("held 120 MiB")
"""


# 120 MiB under a 64 MiB limit stays below the container's memory fence (limit + /box + /tmp +
# slack), so only the supervisor's accounting can catch it.


def py(script: str, memory_kib: int) -> ExecRequest:
    return ExecRequest(
        argv=("python3", "-c", script),
        memory_kib=memory_kib,
        stdout="out.txt",
        record_stdout_bytes=100,
        cpu_time_ms=20_000,
    )


def sh(script: str, memory_kib: int) -> ExecRequest:
    return ExecRequest(argv=("sh", "-c", script), memory_kib=memory_kib, cpu_time_ms=20_000)


@pytest.mark.parametrize("script", [MEMFD, SHARED_MAP], ids=["memfd", "map_shared"])
async def test_shared_memory_over_the_limit_is_mle(runtime: SandboxRuntime, script: str) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE, 64 * 1024) as box:
        out = await box.run(py(script, 64 * 1024))
    assert out.meta.status == "MLE", out.meta
    assert out.meta.message == "memory limit exceeded (65536 KiB)"
    assert out.stdout == b""


async def test_dev_shm_over_the_limit_is_mle(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE, 8 * 1024) as box:
        out = await box.run(sh("head -c 12M /dev/zero > /dev/shm/x && sleep 0.5", 8 * 1024))
    assert out.meta.status == "MLE", out.meta


async def test_files_in_box_and_tmp_are_bounded_by_their_mounts_not_the_limit(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE, 8 * 1024) as box:
        wrote = await box.run(
            sh("head -c 40M /dev/zero > big && head -c 12M /dev/zero > /tmp/t && sleep 0.3", 8192)
        )
        assert wrote.meta.status == "", wrote.meta
        assert wrote.meta.memory_kib < 8 * 1024
        # Beyond the mount's size a write fails (ENOSPC): the program sees an error, no verdict.
        full = await box.run(sh("head -c 80M /dev/zero > bigger", 8192))
        assert full.meta.status == "RE", full.meta
        # Shared memory still counts after the files are there.
        hoard = await box.run(py(MEMFD, 64 * 1024))
        assert hoard.meta.status == "MLE", hoard.meta


async def test_memory_within_the_limit_is_reported(runtime: SandboxRuntime) -> None:
    # Held for a while before exit frees it: the supervisor samples memory every 5 ms, and a
    # program that exits right after writing can end between two samples on a loaded host.
    small = MEMFD.replace("range(120)", "range(20)") + "import time\ntime.sleep(0.5)\n"
    async with runtime.sandbox(DEFAULT_IMAGE, 64 * 1024) as box:
        out = await box.run(py(small, 64 * 1024))
    assert out.meta.status == "", out.meta
    assert 20 * 1024 <= out.meta.memory_kib < 64 * 1024
