"""The judge's own seccomp profile: calls a judged program never needs fail with EPERM.

A C program compiled in the sandbox calls each refused system call directly (no libc wrapper can
hide the answer) and prints the errno it got; calls programs do need still work.
"""

from __future__ import annotations

import pytest

from orchestrator.sandbox.sandbox import ExecRequest, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker

PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void probe(const char *name, long rc) {
    printf("%s %d\n", name, rc < 0 ? errno : 0);
}

int main(void) {
    char params[120];
    memset(params, 0, sizeof params);
    probe("io_uring_setup", syscall(SYS_io_uring_setup, 1, params));
    probe("io_uring_enter", syscall(SYS_io_uring_enter, 0, 1, 0, 0, NULL, 0));
    probe("io_uring_register", syscall(SYS_io_uring_register, 0, 0, NULL, 0));
    probe("userfaultfd", syscall(SYS_userfaultfd, 0));
    probe("bpf", syscall(SYS_bpf, 0, NULL, 0));
    probe("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    probe("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
    probe("add_key", syscall(SYS_add_key, "user", "k", "v", 1, 0));
    probe("request_key", syscall(SYS_request_key, "user", "k", NULL, 0));
    probe("ptrace", syscall(SYS_ptrace, 0, 0, 0, 0));
    probe("unshare", syscall(SYS_unshare, CLONE_NEWUSER));
    probe("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    probe("clone3", syscall(SYS_clone3, NULL, 0));
    probe("getpid", syscall(SYS_getpid));
    probe("memfd_create", syscall(SYS_memfd_create, "m", 0));
    return 0;
}
"""

REFUSED = [
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
    "unshare",
    "clone_newuser",
]


async def test_refused_calls_fail_with_eperm_and_needed_ones_work(runtime: SandboxRuntime) -> None:
    async with runtime.sandbox(DEFAULT_IMAGE) as box:
        await box.put_files(
            {
                "probe.c": PROBE.replace(
                    "#include <unistd.h>", "#include <unistd.h>\n#include <signal.h>"
                ).encode()
            }
        )
        built = await box.run(
            ExecRequest(
                argv=("gcc", "-O0", "-o", "probe", "probe.c"),
                stderr="cc.txt",
                record_stderr_bytes=4096,
                memory_kib=512 * 1024,
            )
        )
        assert built.meta.status == "", (built.meta, built.stderr)
        out = await box.run(
            ExecRequest(argv=("./probe",), stdout="out.txt", record_stdout_bytes=4096)
        )
    assert out.meta.status == "", out.meta
    got = dict(line.split() for line in out.stdout.decode().splitlines())
    assert {name: got[name] for name in REFUSED} == {name: "1" for name in REFUSED}  # EPERM
    assert got["clone3"] == "38"  # ENOSYS, so that C libraries fall back to clone
    assert got["getpid"] == "0"
    assert got["memfd_create"] == "0"
