"""The README's security claims about a sandbox, each shown on the real engine: the program runs
as uid 10001 with no capabilities and ``no-new-privileges`` (a setuid-root binary gains
nothing), CPU time of child processes counts, the pids, open-files and stack limits act, no core
file is written and no Docker socket is inside."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator

import pytest

from orchestrator.sandbox.sandbox import ExecRequest, Meta, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker


async def run(
    runtime: SandboxRuntime, argv: tuple[str, ...], image: str = DEFAULT_IMAGE, **kw: int
) -> tuple[Meta, str, str]:
    async with runtime.sandbox(image) as box:
        out = await box.run(
            ExecRequest(
                argv=argv,
                stdout="o.txt",
                stderr="e.txt",
                record_stdout_bytes=8192,
                record_stderr_bytes=8192,
                **kw,  # type: ignore[arg-type]
            )
        )
    return out.meta, out.stdout.decode(), out.stderr.decode()


def py(script: str) -> tuple[str, ...]:
    return ("python3", "-c", script)


async def test_the_program_is_uid_10001_without_capabilities(runtime: SandboxRuntime) -> None:
    meta, out, _ = await run(runtime, ("sh", "-c", "id -u; id -g; id -G; cat /proc/self/status"))
    assert meta.status == "", meta
    uid, gid, groups, *status = out.splitlines()
    assert (uid, gid, groups) == ("10001", "10001", "10001")
    fields = dict(line.split(":\t", 1) for line in status if ":\t" in line)
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(fields[cap], 16) == 0, (cap, fields[cap])
    assert fields["NoNewPrivs"] == "1"
    assert fields["Seccomp"] == "2"  # a filter is installed


@pytest.fixture
def setuid_image(owner: str) -> Iterator[str]:
    """judge/base with a setuid-root copy of ``id`` on its (not nosuid) root file system."""
    tag = f"judge-test/setuid:{owner}"
    dockerfile = (
        "FROM judge/base\nUSER root\n"
        "RUN cp /usr/bin/id /usr/local/bin/suid-id && chmod 4755 /usr/local/bin/suid-id\n"
    )
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            tag,
            "--label",
            f"io.judge.owner={owner}",
            "-",
        ],
        input=dockerfile.encode(),
        check=True,
        capture_output=True,
    )
    try:
        yield tag
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], check=False, capture_output=True)


async def test_no_new_privileges_holds_against_a_setuid_binary(
    runtime: SandboxRuntime, setuid_image: str
) -> None:
    meta, out, _ = await run(
        runtime, ("sh", "-c", "stat -c '%u %a' /usr/local/bin/suid-id; suid-id"), setuid_image
    )
    assert meta.status == "", meta
    mode, who = out.splitlines()
    assert mode == "0 4755", "the binary is setuid root"
    # Without no-new-privileges it would say "euid=0(root)".
    assert who == "uid=10001(sandbox) gid=10001(sandbox) groups=10001(sandbox)"


CHILD_BURNS = """
import subprocess, sys, time
# The program itself does next to nothing: two child processes each burn 300 ms of their own
# CPU time, one after the other (however long that takes on a busy machine).
burn = "import time\\nwhile time.process_time() < 0.3: pass"
for _ in range(2):
    subprocess.run([sys.executable, "-c", burn], check=True)
print(round(time.process_time() * 1000))
"""


async def test_cpu_time_of_child_processes_counts(runtime: SandboxRuntime) -> None:
    meta, out, _ = await run(runtime, py(CHILD_BURNS), cpu_time_ms=20_000)
    assert meta.status == "", meta
    own_ms = int(out)
    assert own_ms < 200, "the parent's own CPU time is small"
    assert meta.cpu_time_ms >= 600, meta


FORK_UNTIL_REFUSED = """
import os, signal, time
n = 0
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, e.errno)
"""


async def test_the_pids_limit_refuses_the_next_process(runtime: SandboxRuntime) -> None:
    limit = runtime.config.pids_for("runc")
    meta, out, _ = await run(runtime, py(FORK_UNTIL_REFUSED))
    assert meta.status == "", meta
    forked, code = map(int, out.split())
    assert code == errno.EAGAIN
    # The supervisor and this program hold two of the limit; a few may be the engine's.
    assert limit - 8 <= forked <= limit - 2, (forked, limit)


OPEN_UNTIL_REFUSED = """
import os
fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    print(len(fds) + 3, e.errno)
"""


async def test_the_open_files_limit_is_1024(runtime: SandboxRuntime) -> None:
    meta, out, _ = await run(runtime, py(OPEN_UNTIL_REFUSED))
    assert meta.status == "", meta
    held, code = map(int, out.split())
    assert code == errno.EMFILE
    assert 1000 <= held <= 1024, held  # stdin, stdout, stderr and what python keeps open


RECURSE = r"""
#include <stdio.h>
#include <stdlib.h>
/* 64 KiB frames: depth * 64 KiB of stack, one page of each touched. */
static int down(int n) {
    volatile char frame[65536];
    frame[0] = (char)n;
    return n ? down(n - 1) + frame[0] : 0;
}
int main(int argc, char **argv) { printf("%d\n", down(atoi(argv[1]))); return 0; }
"""


async def test_the_stack_limit_follows_the_memory_limit_and_acts(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await box.put_files({"r.c": RECURSE.encode()})
        built = await box.run(ExecRequest(argv=("gcc", "-O0", "-o", "r", "r.c")))
        assert built.meta.status == "", built.meta
        # 1,500 frames are ~94 MiB of stack: over a 64 MiB limit, under a 128 MiB one.
        small = await box.run(ExecRequest(argv=("./r", "1500"), memory_kib=64 * 1024))
        large = await box.run(ExecRequest(argv=("./r", "1500"), memory_kib=128 * 1024))
        limits = await box.run(
            ExecRequest(
                argv=("sh", "-c", "ulimit -s"), memory_kib=64 * 1024, stdout="o",
                record_stdout_bytes=64,
            )
        )  # fmt: skip
    assert limits.stdout == b"65536\n"
    assert (small.meta.status, small.meta.signal) == ("RE", 11), small.meta
    assert large.meta.status == "", large.meta


ABORT_A_CHILD = """
import os
pid = os.fork()
if pid == 0:
    os.abort()
_, status = os.waitpid(pid, 0)
print(os.WTERMSIG(status), os.WCOREDUMP(status))
"""


async def test_no_core_file_is_written(runtime: SandboxRuntime) -> None:
    meta, out, _ = await run(runtime, py(ABORT_A_CHILD))
    assert meta.status == "", meta
    # The kernel says whether it dumped a core: it did not (RLIMIT_CORE is 0).
    assert out == "6 False\n"
    direct = await run(
        runtime, ("sh", "-c", "ulimit -c; python3 -c 'import os; os.abort()'; ls -A")
    )
    assert direct[1].splitlines()[0] == "0"
    assert "core" not in direct[1]


async def test_no_docker_socket_is_inside(runtime: SandboxRuntime) -> None:
    script = (
        "import os, socket, stat\n"
        "found = []\n"
        "for d, dirs, fs in os.walk('/'):\n"
        "    dirs[:] = [x for x in dirs if os.path.join(d, x) not in ('/proc', '/sys')]\n"
        "    for f in fs:\n"
        "        p = os.path.join(d, f)\n"
        "        try:\n"
        "            st = os.lstat(p)\n"
        "        except OSError:\n"
        "            continue\n"
        "        if stat.S_ISSOCK(st.st_mode) or f == 'docker.sock':\n"
        "            found.append(p)\n"
        "print(sorted(found))\n"
        "print(os.environ.get('DOCKER_HOST'))\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect('/var/run/docker.sock')\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
    )
    meta, out, _ = await run(runtime, py(script))
    assert meta.status == "", meta
    assert out.splitlines() == ["[]", "None", str(errno.ENOENT)]
