"""Interactive executes on the real engine: a program and its interactor wired by pipes, each
with its own user, limits and meta. Runs under every runtime the sandbox suite does."""

from __future__ import annotations

import pytest

from orchestrator.sandbox.sandbox import ExecRequest, InteractorRequest, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker

# Guess the number in 1..1000000: the program asks "? n", the interactor answers "<", ">" or
# "=", reading the secret from a file only it may read; it fails (exit 3) on a wrong protocol
# or too many queries.
INTERACTOR = b"""\
import sys
secret = int(open("secret.txt").read())
for queries in range(1, 31):
    line = sys.stdin.readline()
    if not line.startswith("? "):
        sys.exit(3)
    guess = int(line[2:])
    if guess == secret:
        print("=", flush=True)
        print(f"found in {queries}", file=sys.stderr)
        sys.exit(0)
    print("<" if secret < guess else ">", flush=True)
sys.exit(3)
"""

SOLUTION = b"""\
import sys
lo, hi = 1, 1000000
while True:
    mid = (lo + hi) // 2
    print("?", mid, flush=True)
    answer = sys.stdin.readline().strip()
    if answer == "=":
        break
    if answer == "<":
        hi = mid - 1
    else:
        lo = mid + 1
"""

FILES = {"interactor.py": INTERACTOR, "solution.py": SOLUTION, "secret.txt": b"271828\n"}


def interactor(**kw: object) -> InteractorRequest:
    args: dict[str, object] = {
        "argv": ("python3", "interactor.py"),
        "cpu_time_ms": 5000,
        "stderr": "interactor.err",
        "record_stderr_bytes": 256,
        "private": ("secret.txt",),
    }
    args.update(kw)
    return InteractorRequest(**args)  # type: ignore[arg-type]


async def test_binary_search_against_guess_the_number(runtime: SandboxRuntime) -> None:
    game = ExecRequest(
        argv=("python3", "solution.py"),
        cpu_time_ms=5000,
        stderr="err.txt",
        record_stderr_bytes=256,
        interactor=interactor(),
    )
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await box.put_files(FILES)
        first = await box.run(game)
        # Again: the secret is private already, which is fine.
        out = await box.run(game)
    assert first.meta.status == "", first.meta
    assert out.meta.status == "", (out.meta, out.stderr)
    assert out.meta.exit_code == 0
    assert out.interactor is not None
    assert out.interactor.meta.status == "", (out.interactor.meta, out.interactor.stderr)
    assert out.interactor.meta.exit_code == 0
    assert out.interactor.stderr.startswith(b"found in ")
    # Each side is measured on its own: both are Python, neither figure is the sum.
    assert 1000 <= out.meta.memory_kib <= 64 * 1024, out.meta
    assert 1000 <= out.interactor.meta.memory_kib <= 64 * 1024, out.interactor.meta


async def test_a_silent_program_is_tle_and_both_are_stopped(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await box.put_files(FILES)
        out = await box.run(
            ExecRequest(
                argv=("python3", "-c", "import sys; sys.stdin.read()"),
                cpu_time_ms=1000,
                interactor=interactor(argv=("python3", "-c", "import sys; sys.stdin.read()")),
            )
        )
        left = await box.run(
            ExecRequest(
                argv=(
                    "python3",
                    "-c",
                    "import os; print(len([p for p in os.listdir('/proc') if p.isdigit()]))",
                ),
                stdout="n.txt",
                record_stdout_bytes=16,
            )
        )
    # The program waits for the interactor, which waits for the program: the program's fault.
    assert out.meta.status == "TLE", out.meta
    assert out.meta.message == "real time limit exceeded (1500 ms)", out.meta
    assert out.meta.real_time_ms >= 1500, out.meta
    assert out.interactor is not None
    # Once the program is gone the interactor reads EOF and ends on its own.
    assert out.interactor.meta.status == "", out.interactor.meta
    assert left.stdout == b"2\n"  # the supervisor and the counting process only


async def test_the_program_cannot_read_the_interactors_private_file(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await box.put_files(FILES)
        out = await box.run(
            ExecRequest(
                argv=("python3", "-c", "print(open('secret.txt').read())"),
                stderr="err.txt",
                record_stderr_bytes=512,
                interactor=interactor(
                    argv=(
                        "python3",
                        "-c",
                        "import sys; sys.stderr.write(open('secret.txt').read())",
                    )
                ),
            )
        )
        later = await box.run(
            ExecRequest(
                argv=("cat", "secret.txt"),
                stdout="o.txt",
                stderr="o.txt",
                record_stdout_bytes=512,
            )
        )
    assert out.meta.status == "RE", out.meta
    assert b"Permission denied" in out.stderr
    assert out.interactor is not None
    assert out.interactor.meta.status == "", out.interactor.meta
    assert out.interactor.stderr == b"271828\n"
    # It stays private after the execute.
    assert later.meta.status == "RE"
    assert b"Permission denied" in later.stdout


async def test_a_crashing_interactor_is_re_and_the_program_gets_a_broken_pipe(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await box.put_files(FILES)
        out = await box.run(
            ExecRequest(
                # Keeps writing: once the interactor is gone, the write fails with EPIPE.
                argv=("sh", "-c", "while :; do echo '? 1'; done"),
                cpu_time_ms=5000,
                interactor=interactor(argv=("python3", "-c", "import os; os.abort()")),
            )
        )
    assert out.interactor is not None
    assert out.interactor.meta.status == "RE", out.interactor.meta
    assert out.interactor.meta.signal == 6
    assert out.meta.status == "RE", out.meta
    assert out.meta.signal == 13, out.meta  # SIGPIPE, not the real-time limit


async def test_a_missing_or_linked_private_file_is_se(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        out = await box.run(
            ExecRequest(argv=("true",), interactor=interactor(private=("nope.txt",)))
        )
        await box.run(ExecRequest(argv=("sh", "-c", "ln -s /etc/passwd link && mkdir dir")))
        linked = await box.run(
            ExecRequest(argv=("true",), interactor=interactor(private=("link",)))
        )
        through = await box.run(
            ExecRequest(argv=("true",), interactor=interactor(private=("link/x",)))
        )
        directory = await box.run(
            ExecRequest(argv=("true",), interactor=interactor(private=("dir",)))
        )
    assert out.meta.status == "SE"
    assert "nope.txt" in out.meta.message
    assert out.interactor is not None
    assert out.interactor.meta.status == "SE"
    assert linked.meta.status == "SE"
    assert "symbolic link" in linked.meta.message, linked.meta
    assert through.meta.status == "SE", through.meta
    assert directory.meta.status == "SE"
    assert "directory" in directory.meta.message, directory.meta


async def test_each_side_has_its_own_cpu_limit(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        out = await box.run(
            ExecRequest(
                argv=("sh", "-c", "while :; do :; done"),
                cpu_time_ms=400,
                interactor=interactor(argv=("sh", "-c", "cat >/dev/null"), private=()),
            )
        )
    assert out.meta.status == "TLE", out.meta
    if "CPU time" in out.meta.message:  # else a busy machine starved it: real time ran out
        assert 400 <= out.meta.cpu_time_ms <= 600, out.meta
    assert out.interactor is not None
    assert out.interactor.meta.status == "", out.interactor.meta
    assert out.interactor.meta.cpu_time_ms < 200, out.interactor.meta


async def test_an_interactor_waiting_for_a_slow_program_is_not_its_fault(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        out = await box.run(
            ExecRequest(
                # Slow but within its limits: it thinks (sleeps) for 1 s, then answers.
                argv=("sh", "-c", "sleep 1; echo done"),
                cpu_time_ms=2000,
                interactor=interactor(
                    argv=("sh", "-c", 'read line && test "$line" = done'),
                    cpu_time_ms=200,
                    private=(),
                ),
            )
        )
    assert out.meta.status == "", out.meta
    assert out.interactor is not None
    # Its real-time limit (300 ms) is far below the program's run time, yet it is fine.
    assert out.interactor.meta.status == "", out.interactor.meta
    assert out.interactor.meta.real_time_ms >= 1000


async def test_a_programs_leftover_holding_the_pipe_is_killed_so_the_interactor_sees_eof(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        out = await box.run(
            ExecRequest(
                # The background sleep inherits the pipe: without the supervisor killing the
                # program's processes when its main one ends, the interactor would wait for EOF
                # until its own limit.
                argv=("sh", "-c", "sleep 100 & echo bye"),
                cpu_time_ms=5000,
                interactor=interactor(argv=("sh", "-c", "cat >/dev/null"), private=()),
            )
        )
    assert out.meta.status == "", out.meta
    assert out.interactor is not None
    assert out.interactor.meta.status == "", out.interactor.meta
    # Without the kill it would have read EOF only when the program's real-time limit (7.5 s)
    # ended the sleep.
    assert out.interactor.meta.real_time_ms < 7500, out.interactor.meta


async def test_the_program_cannot_signal_the_interactor(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        out = await box.run(
            ExecRequest(
                argv=(
                    "python3",
                    "-c",
                    # Linux and gVisor differ in the error when nothing could be signalled.
                    "import os, signal\ntry: os.kill(-1, signal.SIGKILL)\n"
                    "except OSError: pass\nprint('still here')",
                ),
                cpu_time_ms=5000,
                interactor=interactor(
                    argv=("sh", "-c", 'read line; echo "interactor got: $line" >&2'), private=()
                ),
            )
        )
    assert out.meta.status == "", out.meta
    assert out.interactor is not None
    assert out.interactor.meta.status == "", out.interactor.meta
    assert out.interactor.stderr == b"interactor got: still here\n"


# The program tries to swap the secret for its own before the (slow) interactor reads it.
FORGER = """\
import os, sys
for path in ("secret.txt", "deep/er/secret.txt", "deep", "deep/er"):
    try:
        os.rename(path, path + ".moved")
        print("moved", path, file=sys.stderr)
    except OSError as e:
        print("refused", path, e.errno, file=sys.stderr)
for path in ("secret.txt", "deep/er/secret.txt"):
    try:
        os.unlink(path)
        print("removed", path, file=sys.stderr)
    except OSError as e:
        print("refused", path, e.errno, file=sys.stderr)
open("mine.txt", "w").write("the program may still create files\\n")
print("? 1", flush=True)
"""

LATE_READER = """\
import sys, time
time.sleep(0.3)
print(open("secret.txt").read().strip(), open("deep/er/secret.txt").read().strip(), file=sys.stderr)
print(sys.stdin.readline().strip(), file=sys.stderr)
"""


async def test_the_program_cannot_swap_a_private_file_for_its_own(
    runtime: SandboxRuntime,
) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await box.put_files(
            {
                "secret.txt": b"271828\n",
                "deep/er/secret.txt": b"314159\n",
                "forger.py": FORGER.encode(),
                "late.py": LATE_READER.encode(),
            }
        )
        out = await box.run(
            ExecRequest(
                argv=("python3", "forger.py"),
                cpu_time_ms=5000,
                stderr="forger.err",
                record_stderr_bytes=1024,
                interactor=interactor(
                    argv=("python3", "late.py"), private=("secret.txt", "deep/er/secret.txt")
                ),
            )
        )
        after = await box.run(
            ExecRequest(
                argv=(
                    "python3",
                    "-c",
                    "import os; s = os.stat('.'); t = os.stat('deep');"
                    " print(s.st_uid, s.st_gid, oct(s.st_mode & 0o7777), t.st_uid, oct(t.st_mode))"
                    "; open('new.txt', 'w').write('x')",
                ),
                stdout="stat.txt",
                record_stdout_bytes=128,
            )
        )
    assert out.meta.status == "", (out.meta, out.stderr)
    assert out.stderr.count(b"refused") == 6, out.stderr
    assert out.interactor is not None
    assert out.interactor.stderr == b"271828 314159\n? 1\n", out.interactor.stderr
    # The sandbox directory is the sandbox user's again afterwards.
    assert after.meta.status == "", after.meta
    assert after.stdout.split()[:3] == [b"10001", b"10001", b"0o755"]
    assert after.stdout.split()[3] == b"10001"
