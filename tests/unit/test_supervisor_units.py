"""The supervisor's pure parts, compiled with the host's gcc from images/supervisor/*.c.

JSON parsing, request fields, limit arithmetic, the verdict's order of precedence and which
cgroup files are read (v1 and v2) are checked here without an engine; what the supervisor does
to a running command is the sandbox suite's business (tests/sandbox).

The cgroup trees under ``cgroupfs/``: ``v1-docker`` was recorded in a container on this project's
cgroup v1 host; the v2 trees (``v2-private``: Docker's default private cgroup namespace,
``v2-host``: the host's namespace, our cgroup a scope below the root) are written in the kernel's
documented file formats (Documentation/admin-guide/cgroup-v2.rst), since no v2 host was at hand;
``none-gvisor`` is what runsc shows (no cgroup files, an empty /proc/self/cgroup).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "images" / "supervisor"
DRIVER = Path(__file__).with_name("supervisor_units.c")
TREES = Path(__file__).with_name("cgroupfs")
FLAGS = ["-O1", "-Wall", "-Wextra", "-Werror"]


def _ensure_gcc() -> str:
    """The host's C compiler; installed from the distribution (as images/build.sh installs its
    tools) on a machine without one."""
    gcc = shutil.which("gcc")
    if gcc is None and shutil.which("apt-get"):
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        install = ["apt-get", "install", "-y", "-q", "gcc", "libc6-dev"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
        gcc = shutil.which("gcc")
    assert gcc is not None, "the supervisor unit tests need gcc (apt-get install gcc libc6-dev)"
    return gcc


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The driver, built from the supervisor's own sources (its main() renamed away)."""
    gcc = _ensure_gcc()
    out = tmp_path_factory.mktemp("supervisor-units")
    parts = sorted(p for p in SOURCES.glob("*.c") if p.name != "channel.c")
    subprocess.run(
        [gcc, *FLAGS, "-Dmain=supervisor_main", "-c", "-o", str(out / "channel.o"), "channel.c"],
        cwd=SOURCES,
        check=True,
    )
    binary = out / "units"
    subprocess.run(
        [gcc, *FLAGS, f"-I{SOURCES}", "-o", str(binary), str(DRIVER)]
        + [str(p) for p in parts]
        + [str(out / "channel.o")],
        check=True,
    )
    return binary


def _run(units: Path, *args: str, lines: list[str] | None = None) -> list[str]:
    stdin = "".join(line + "\n" for line in lines or [])
    done = subprocess.run(
        [str(units), *args], input=stdin.encode(), capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode().splitlines()


# -- JSON -----------------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """What the driver prints for a parsed value (objects keep order and duplicates)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else "<number>"
    if isinstance(value, float):
        return "<number>"
    if isinstance(value, list) and value and value[0] == ("<pairs>",):
        return {"o": [[k, _canonical(v)] for k, v in value[1:]]}
    return [_canonical(v) for v in value]


def _python_parse(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> list[Any]:
        return [("<pairs>",), *items]

    return _canonical(json.loads(text, object_pairs_hook=pairs))


VALID = [
    '{"op":"exec","argv":["sh","-c","echo hi"],"cpu_time_ms":1000}',
    '  {"a" : [ 1 , -2 , 0 , true , false , null , "x" ] }  ',
    '{"a":1,"a":2}',
    '{"nested":{"deeper":{"deepest":[[],{}]}}}',
    '"just a string"',
    "12345678901234567890",
    "9223372036854775807",
    "-9223372036854775808",
    "-0",
    "1.5e3",
    "1E-2",
    "0.0",
    '"\\u00e9\\u4e2d\\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t"',
    '"a\\u0000b"',
    '"\u00e9 raw UTF-8 \u4e2d"',
    "[" * 64 + "]" * 64,
]

INVALID = {
    "": "unexpected end of input",
    "{": "expected a member name",
    '{"a"}': "expected ':'",
    '{"a":1 "b":2}': "expected ',' or '}'",
    "[1 2]": "expected ',' or ']'",
    '"abc': "unterminated string",
    '"a\tb"': "control character in string",
    '"\\x"': "invalid escape in string",
    '"\\u12"': "invalid \\u escape",
    '"\\udc00"': "unpaired surrogate in \\u escape",
    '"\\ud800x"': "unpaired surrogate in \\u escape",
    '"\\ud800\\u0041"': "unpaired surrogate in \\u escape",
    "01": "trailing characters after the JSON value",
    "1.": "invalid number",
    "-": "invalid number",
    "1e": "invalid number",
    "tru": "invalid literal",
    "nul": "invalid literal",
    "{} {}": "trailing characters after the JSON value",
    "[" * 65 + "]" * 65: "nesting too deep",
}


def test_valid_documents_parse_as_python_parses_them(units: Path) -> None:
    got = _run(units, "json", lines=VALID)
    assert [json.loads(line) for line in got] == [_python_parse(doc) for doc in VALID]


def test_malformed_documents_are_refused_with_their_reason(units: Path) -> None:
    got = _run(units, "json", lines=list(INVALID))
    assert got == [f"error: {why}" for why in INVALID.values()]
    # No lenient extensions: what JSON refuses is refused (Python itself accepts NaN).
    for doc in ["[1,]", '{"a":1,}', "NaN", "Infinity", "'x'", "[1]]", "+1", ".5", "0x10"]:
        assert _run(units, "json", lines=[doc])[0].startswith("error: "), doc


# -- exec requests, limits and the verdict -------------------------------------------------------

BASE = {
    "op": "exec",
    "argv": ["./main"],
    "cpu_time_ms": 1000,
    "wall_time_ms": 1500,
    "memory_kib": 65536,
    "output_kib": 1024,
}


def _exec(units: Path, cases: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    lines = [json.dumps({"req": req, "outcome": outcome}) for req, outcome in cases]
    return [json.loads(line) for line in _run(units, "exec", lines=lines)]


def _with(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


def test_exec_fields_are_checked(units: Path) -> None:
    missing = {k: v for k, v in BASE.items() if k != "memory_kib"}
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (missing, {}),
        (_with(argv=[]), {}),
        (_with(argv=["a", 1]), {}),
        (_with(argv=["a\u0000b"]), {}),
        (_with(cpu_time_ms=0), {}),
        (_with(cpu_time_ms=1.5), {}),
        (_with(cpu_time_ms=2**40 + 1), {}),
        (_with(output_kib=-1), {}),
        (_with(stdout=7), {}),
        (_with(record_stdout=-1), {}),
    ]
    errors = [r.get("error") for r in _exec(units, cases)]
    assert errors == [
        "missing field 'memory_kib'",
        "field 'argv' must be a non-empty list of strings",
        "field 'argv' must be a list of strings without NUL characters",
        "field 'argv' must be a list of strings without NUL characters",
        "field 'cpu_time_ms' must be an integer from 1 to 1099511627776",
        "field 'cpu_time_ms' must be an integer from 1 to 1099511627776",
        "field 'cpu_time_ms' must be an integer from 1 to 1099511627776",
        "field 'output_kib' must be an integer from 0 to 1099511627776",
        "field 'stdout' must be a string without NUL characters",
        "field 'record_stdout' must be an integer from 0 to 1099511627776",
    ]


def test_null_is_absent_and_the_last_repeat_wins(units: Path) -> None:
    req = json.dumps(BASE)[:-1] + ', "cpu_time_ms": 2000, "output_kib": 7}'
    got = json.loads(_run(units, "exec", lines=['{"req": ' + req + "}"])[0])
    assert (got["cpu_ms"], got["out_kib"]) == (2000, 7)
    (null_stdin,) = _exec(units, [(_with(stdin=None, record_stdout=None), {})])
    assert null_stdin["status"] == ""


def test_the_stack_gets_the_memory_limit_but_at_least_8_mib(units: Path) -> None:
    got = _exec(units, [(_with(memory_kib=m), {}) for m in (1, 8191, 8192, 262144)])
    assert [r["stack_bytes"] for r in got] == [8 << 20, 8 << 20, 8 << 20, 256 << 20]


def test_an_explicit_stack_limit_is_taken_as_it_is(units: Path) -> None:
    got = _exec(units, [(_with(stack_kib=s), {}) for s in (64, 1024, 10**6)])
    assert [r["stack_bytes"] for r in got] == [64 << 10, 1 << 20, 10**6 << 10]


def test_the_largest_file_is_the_lower_of_output_and_file_size_limits(units: Path) -> None:
    sizes = [{}, {"file_size_kib": 0}, {"file_size_kib": 100}, {"file_size_kib": 5000}]
    got = _exec(units, [(_with(output_kib=1024, **s), {}) for s in sizes])
    assert [r["fsize_bytes"] for r in got] == [1024 << 10, 0, 100 << 10, 1024 << 10]


def test_new_limits_are_checked_and_absent_by_default(units: Path) -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (BASE, {}),
        (_with(process_limit=0), {}),
        (_with(file_size_kib=-1), {}),
        (_with(stack_kib=0), {}),
        (_with(process_limit=None, file_size_kib=None, stack_kib=None), {}),
        (_with(process_limit=3), {}),
    ]
    got = _exec(units, cases)
    assert got[0]["process_limit"] == 0
    assert [r.get("error") for r in got[1:4]] == [
        "field 'process_limit' must be an integer from 1 to 1099511627776",
        "field 'file_size_kib' must be an integer from 0 to 1099511627776",
        "field 'stack_kib' must be an integer from 1 to 1099511627776",
    ]
    assert {k: got[4][k] for k in ("process_limit", "fsize_bytes", "stack_bytes")} == {
        "process_limit": 0,
        "fsize_bytes": 1024 << 10,
        "stack_bytes": 64 << 20,
    }
    assert got[5]["process_limit"] == 3


def test_a_lower_hard_limit_from_the_engine_is_kept(units: Path) -> None:
    assert _run(units, "rlimit", "1024", "-1") == ["1024"]
    assert _run(units, "rlimit", "1024", "512") == ["512"]
    assert _run(units, "rlimit", "512", "1024") == ["512"]


def test_the_monitor_sleeps_no_longer_than_the_time_left(units: Path) -> None:
    ms = 1_000_000

    def poll(cpu_left: int, wall_left: int) -> int:
        return int(_run(units, "poll", str(cpu_left), str(wall_left))[0])

    assert poll(100 * ms, 100 * ms) == 5 * ms  # the regular interval
    assert poll(3 * ms, 100 * ms) == 3 * ms  # CPU time nearly used up
    assert poll(ms // 10, 100 * ms) == ms  # but at least 1 ms for CPU time
    assert poll(100 * ms, 2 * ms) == 2 * ms + 1  # real time runs out first
    assert poll(-5, -5) == -4  # overdue: the next poll decides (sleep_for_sigchld floors it)


Outcome = dict[str, Any]


def _verdicts(units: Path, outcomes: list[Outcome], **fields: Any) -> list[tuple[str, str]]:
    got = _exec(units, [(_with(**fields), o) for o in outcomes])
    return [(r["status"], r["message"]) for r in got]


def test_the_first_matching_status_wins(units: Path) -> None:
    everything = {
        "reason": "cpu",
        "oom": 1,
        "output_full": 1,
        "sig": 9,
        "exit_code": 0,
        "cpu_ms": 5000,
        "real_ms": 9000,
        "mem_kib": 10**6,
    }
    ladder: list[tuple[Outcome, tuple[str, str]]] = [
        ({**everything, "fork_errno": 11}, ("SE", "cannot start the command: ")),
        ({**everything, "stage": 3, "err": 2}, ("SE", "stdin file 'in.txt' not found")),
        (everything, ("TLE", "CPU time limit exceeded (1000 ms)")),
        ({**everything, "reason": "wall"}, ("TLE", "real time limit exceeded (1500 ms)")),
        ({**everything, "reason": "", "cpu_ms": 10}, ("TLE", "real time limit exceeded (1500 ms)")),
        (
            {**everything, "reason": "", "cpu_ms": 10, "real_ms": 10},
            ("MLE", "memory limit exceeded (65536 KiB)"),
        ),
        ({"sig": 25}, ("OLE", "output limit exceeded (1024 KiB)")),
        ({"output_full": 1, "exit_code": 1}, ("OLE", "output limit exceeded (1024 KiB)")),
        ({"output_full": 1}, ("", "")),
        ({"stage": 7, "err": 2}, ("RE", "command './main' not found")),
        ({"stage": 7, "err": 13}, ("RE", "cannot execute './main': Permission denied")),
        ({"sig": 11}, ("RE", "killed by signal 11 (SIGSEGV)")),
        ({"exit_code": 3}, ("RE", "exited with code 3")),
        ({"cpu_ms": 1000, "real_ms": 1500, "mem_kib": 65536}, ("", "")),
        ({"cpu_ms": 1001}, ("TLE", "CPU time limit exceeded (1000 ms)")),
        ({"real_ms": 2000, "unlimited_ms": 600}, ("", "")),
        ({"mem_kib": 65537}, ("MLE", "memory limit exceeded (65536 KiB)")),
        ({"oom": 1}, ("MLE", "memory limit exceeded (65536 KiB)")),
    ]
    got = _verdicts(units, [o for o, _ in ladder], stdin="in.txt")
    for (status, message), (_o, (want_status, want_message)) in zip(got, ladder, strict=True):
        assert status == want_status
        assert message.startswith(want_message), message


def test_process_and_file_size_limits_have_their_own_messages(units: Path) -> None:
    outcomes: list[Outcome] = [
        {"reason": "proc", "sig": 9},
        {"reason": "proc", "sig": 9, "cpu_ms": 1001},  # over the CPU limit too: TLE first
        {"reason": "proc", "sig": 9, "output_full": 1},  # before OLE
        {"sig": 25},
        {"output_full": 1, "exit_code": 1},
        {"reason": "file", "sig": 9},  # merged: the supervisor stopped a stream at the limit
        {"reason": "file", "sig": 9, "mem_kib": 10**6},  # MLE first
    ]
    got = _verdicts(units, outcomes, process_limit=4, file_size_kib=100)
    assert got == [
        ("RE", "process limit exceeded (4)"),
        ("TLE", "CPU time limit exceeded (1000 ms)"),
        ("RE", "process limit exceeded (4)"),
        ("OLE", "file size limit exceeded (100 KiB)"),
        ("OLE", "file size limit exceeded (100 KiB)"),
        ("OLE", "file size limit exceeded (100 KiB)"),
        ("MLE", "memory limit exceeded (65536 KiB)"),
    ]
    # A file-size limit at or above the output limit changes nothing.
    assert _verdicts(units, [{"sig": 25}], file_size_kib=1024) == [
        ("OLE", "output limit exceeded (1024 KiB)")
    ]


def test_setup_errors_name_the_redirection(units: Path) -> None:
    outcomes = [{"stage": s, "err": 40} for s in (3, 4, 5, 8)] + [
        {"stage": 1, "err": 1},
        {"stage": 8, "err": -1000},
        {"stage": 8, "err": -1001},
    ]
    got = _verdicts(units, outcomes, stdin="i", stdout="o", stderr="e", merged="m")
    assert got == [
        ("SE", "cannot open stdin file 'i': is a symbolic link (refused)"),
        ("SE", "cannot open stdout file 'o': is a symbolic link (refused)"),
        ("SE", "cannot open stderr file 'e': is a symbolic link (refused)"),
        ("SE", "cannot open merged file 'm': is a symbolic link (refused)"),
        ("SE", "cannot drop privileges: Operation not permitted"),
        ("SE", "cannot open merged file 'm': not a regular file (refused)"),
        ("SE", "cannot open merged file 'm': it is also the stdout or stderr file (refused)"),
    ]


# -- cgroup files --------------------------------------------------------------------------------


def _cgroup(units: Path, tree: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [str(units), "cgroup", str(TREES / tree)], capture_output=True, check=True, timeout=30
    )
    return json.loads(done.stdout), done.stderr.decode()


def test_v1_as_docker_mounts_it(units: Path) -> None:
    got, log = _cgroup(units, "v1-docker")
    assert got == {
        "version": "v1",
        "cpu_ns": 26266711,
        "anon_bytes": 212992,  # total_rss, not rss or total_rss_huge
        "shmem_bytes": 4096,  # total_shmem
        "oom_kills": 2,
        "tasks": 2,  # pids/pids.current
    }
    # Our host path from /proc/self/cgroup does not exist in the container: the mount's root.
    assert "cgroup/cpuacct/cpuacct.usage" in log
    assert "cgroup/pids/pids.current" in log
    assert "/docker/" not in log


def test_v1_with_cpu_and_cpuacct_mounted_together(units: Path) -> None:
    got, log = _cgroup(units, "v1-comounted")
    assert (got["version"], got["cpu_ns"], got["oom_kills"]) == ("v1", 1_000_000, 0)
    assert "cgroup/cpu,cpuacct/cpuacct.usage" in log


def test_v2_with_a_private_cgroup_namespace(units: Path) -> None:
    got, _log = _cgroup(units, "v2-private")
    assert got == {
        "version": "v2",
        "cpu_ns": 52137 * 1000,  # usage_usec, in ns
        "anon_bytes": 1200128,  # anon, not anon_thp
        "shmem_bytes": 65536,
        "oom_kills": 1,  # memory.events oom_kill, not oom or oom_group_kill
        "tasks": 3,  # pids.current
    }


def test_v2_with_the_hosts_namespace_reads_our_own_scope(units: Path) -> None:
    got, log = _cgroup(units, "v2-host")
    assert got == {
        "version": "v2",
        "cpu_ns": 7000 * 1000,
        "anon_bytes": 409600,
        "shmem_bytes": 8192,
        "oom_kills": 0,
        "tasks": 4,
    }
    # cpu.stat, memory.stat, memory.events, pids.current: none of the root's
    assert log.count(".scope/") == 4


def test_gvisor_has_no_cgroup_files(units: Path) -> None:
    got, log = _cgroup(units, "none-gvisor")
    assert got == {
        "version": "none",
        "cpu_ns": None,
        "anon_bytes": None,
        "shmem_bytes": None,
        "oom_kills": None,
        "tasks": None,
    }
    assert "falling back" in log
