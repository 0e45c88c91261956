"""Statuses chosen as Judge0 chooses them, and the missions submissions become (no engine)."""

from __future__ import annotations

from typing import Any

import pytest

from service.frontdoors.judge0 import plan, verdict, wire
from service.frontdoors.judge0.languages import Judge0Language
from service.frontdoors.judge0.request import Judge0Config, SubmissionRequest, parse_submission


def meta(status: str = "", **extra: Any) -> dict[str, Any]:
    base = {
        "status": status,
        "message": "",
        "memory-usage": 1000,
        "cpu-time-usage": 10,
        "real-time-usage": 20,
        "exit-code": 0,
        "signal": 0,
    }
    return {"meta": {**base, **extra}}


def judge(executes: list[dict[str, Any]], outputs: dict[str, bytes], **kw: Any) -> verdict.Outcome:
    args: dict[str, Any] = dict(
        compiles=False,
        cached=None,
        runs=1,
        redirect=False,
        cpu_limit_s=5.0,
        max_file_kib=1024,
        expected=None,
    )
    args.update(kw)
    return verdict.judge(executes, outputs, **args)


@pytest.mark.parametrize(
    ("run", "status", "message"),
    [
        (meta("TLE", **{"cpu-time-usage": 6000}), 5, "Time limit exceeded"),
        (meta("TLE"), 5, "Time limit exceeded (wall clock)"),
        (meta("", **{"cpu-time-usage": 5500}), 5, "Time limit exceeded"),  # within extra time
        (meta("RE", signal=11, **{"exit-code": None}), 7, "Caught fatal signal 11"),
        (meta("RE", signal=25), 8, "Caught fatal signal 25"),
        (meta("RE", signal=8), 9, "Caught fatal signal 8"),
        (meta("RE", signal=6), 10, "Caught fatal signal 6"),
        (meta("RE", signal=9), 12, "Caught fatal signal 9"),
        (meta("RE", **{"exit-code": 3}), 11, "Exited with error status 3"),
        (meta("SE", message="sandbox failed"), 13, "sandbox failed"),
        (meta("MLE"), 12, "Memory limit exceeded"),
        (
            meta("TLE", message="real time limit exceeded (2000 ms)", **{"cpu-time-usage": 9000}),
            5,
            "Time limit exceeded (wall clock)",
        ),
        (
            meta("RE", signal=9, message="process limit exceeded (5)"),
            12,
            "Process limit exceeded (max_processes_and_or_threads)",
        ),
        (meta("OLE"), 8, "Output limit exceeded: a file reached max_file_size (1024 KB)"),
        (meta(""), 3, None),
    ],
)
def test_run_statuses(run: dict[str, Any], status: int, message: str | None) -> None:
    got = judge([run], {"out0": b"x\n"})
    assert (got.status_id, got.message) == (status, message)


def test_signal_and_exit_fields() -> None:
    got = judge([meta("RE", signal=11, **{"exit-code": None})], {})
    assert (got.exit_code, got.exit_signal) == (0, 11)
    got = judge([meta("RE", **{"exit-code": 2})], {})
    assert (got.exit_code, got.exit_signal) == (2, None)


def test_expected_output_ignores_trailing_whitespace_per_line_and_at_the_end() -> None:
    ok = judge([meta()], {"out0": b"1 2  \n3\t\n\n\n"}, expected=b"1 2\n3")
    assert ok.status_id == wire.ACCEPTED
    wrong = judge([meta()], {"out0": b"1 2\n 3\n"}, expected=b"1 2\n3")
    assert wrong.status_id == wire.WRONG_ANSWER
    assert judge([meta()], {}, expected=b"").status_id == wire.ACCEPTED
    assert judge([meta()], {}, expected=b"x").status_id == wire.WRONG_ANSWER


def test_empty_output_is_null_and_times_are_seconds() -> None:
    got = judge([meta(**{"cpu-time-usage": 12, "real-time-usage": 30})], {"out0": b"", "err0": b""})
    assert (got.stdout, got.stderr) == (None, None)
    assert (got.time_s, got.wall_time_s, got.memory_kib) == (0.012, 0.03, 1000)


def test_compile_failure_and_timeout() -> None:
    compile_fail = meta("RE", **{"exit-code": 1})
    got = judge([compile_fail, meta()], {"compile": b"main.c:1: error"}, compiles=True)
    assert got.status_id == wire.COMPILATION_ERROR
    assert got.compile_output == b"main.c:1: error"
    assert got.time_s is None
    assert got.stdout is None
    got = judge([meta("TLE"), meta()], {"compile": b"..."}, compiles=True)
    assert got.compile_output == b"Compilation time limit exceeded."
    got = judge([meta(), meta()], {"compile": b"warning", "out0": b"ok"}, compiles=True)
    assert (got.status_id, got.compile_output, got.stdout) == (3, b"warning", b"ok")


def test_a_cached_compile_is_used_instead_of_the_unpack_step() -> None:
    cached = verdict.CompileResult(ok=False, output=b"error: x")
    got = judge([meta(), meta("RE", **{"exit-code": 127})], {}, compiles=True, cached=cached)
    assert (got.status_id, got.compile_output) == (6, b"error: x")
    got = judge(
        [meta("RE"), meta()], {}, compiles=True, cached=verdict.CompileResult(ok=True, output=None)
    )
    assert got.status_id == wire.INTERNAL_ERROR


def test_runs_stop_at_the_first_that_is_not_accepted_and_average() -> None:
    runs = [
        meta(**{"cpu-time-usage": 10, "memory-usage": 100}),
        meta("RE", **{"exit-code": 1, "cpu-time-usage": 30, "memory-usage": 301}),
        meta(),
    ]
    got = judge(runs, {"out0": b"a", "out1": b"b", "out2": b"c"}, runs=3)
    assert got.status_id == wire.NZEC
    assert got.stdout == b"b"
    assert got.time_s == pytest.approx(0.02)
    assert got.memory_kib == 200


def test_redirected_stderr() -> None:
    got = judge([meta()], {"out0": b"both", "err0": b"ignored"}, redirect=True)
    assert (got.stdout, got.stderr) == (b"both", None)


LANG_C = Judge0Language(
    50, "C", "judge/cpp", "main.c", ("gcc", "-o", "a.out", "main.c"), ("./a.out",)
)
LANG_PY = Judge0Language(71, "Python", "judge/python3", "script.py", None, ("python3", "script.py"))
PROJECT = Judge0Language(
    89,
    "Multi-file program",
    "judge/default",
    None,
    ("/bin/bash", "compile"),
    ("/bin/bash", "run"),
    is_project=True,
)


def request(**params: Any) -> SubmissionRequest:
    langs = {50: LANG_C.facts, 71: LANG_PY.facts, 89: PROJECT.facts}
    got = parse_submission(
        {"source_code": "x", "language_id": 50, **params},
        base64_encoded=False,
        config=Judge0Config(),
        language=langs.get,
    )
    assert isinstance(got, SubmissionRequest), got
    return got


def test_a_compiled_submission_becomes_compile_then_runs() -> None:
    req = request(
        compiler_options="-O2 -DX=1; rm -rf /",
        command_line_arguments="a 'b c' $HOME",
        number_of_runs=2,
        stdin="1 2",
        cpu_time_limit=2,
        cpu_extra_time=0.5,
        memory_limit=65536,
        max_file_size=10,
    )
    built = plan.build(req, LANG_C, Judge0Config(), {"lib.h": b"//"}, token="t")
    executes = built.mission["prepare"]["execute"]
    assert [e["name"] for e in executes] == ["compile", "run 1", "run 2"]
    # Options are argv items after Judge0's sanitising, never seen by a shell.
    assert executes[0]["command"][-9:] == [
        "gcc",
        "-o",
        "a.out",
        "main.c",
        "-O2",
        "-DX=1",
        "rm",
        "-rf",
        "/",
    ]
    assert executes[0]["command"][:2] == ["sh", "-c"]
    assert executes[1]["command"] == ["./a.out", "a", "b c", "HOME"]
    assert executes[1]["time_limit"] == 2500
    assert executes[1]["memory_limit"] == 65536
    assert executes[1]["output_limit"] == 10
    assert executes[1]["wall_time_limit"] == 10000
    assert executes[1]["process_limit"] == 60
    assert executes[1]["file_size_limit"] == 10
    assert executes[1]["stack_limit"] == 64000
    assert executes[1]["stdin"] == plan.STDIN
    assert built.inputs == {"lib.h": b"//", "main.c": b"x", plan.STDIN: b"1 2", plan.KEEP: b""}
    assert built.mission["image"] == "judge/cpp"
    assert built.mission["return"]["payload"] == {"token": "t"}
    cached = plan.cached_inputs(built.inputs, b"tar")
    assert cached == {plan.STDIN: b"1 2", plan.KEEP: b"", plan.ARTIFACT_IN: b"tar"}


def test_an_interpreted_submission_has_no_compile_and_the_source_wins_over_the_zip() -> None:
    langs = {71: LANG_PY.facts}
    req = parse_submission(
        {"source_code": "print(1)", "language_id": 71},
        base64_encoded=False,
        config=Judge0Config(),
        language=langs.get,
    )
    assert isinstance(req, SubmissionRequest)
    built = plan.build(req, LANG_PY, Judge0Config(), {"script.py": b"zip's"}, token="t")
    assert [e["name"] for e in built.mission["prepare"]["execute"]] == ["run 1"]
    assert built.inputs["script.py"] == b"print(1)"


def test_a_project_compiles_only_with_a_compile_script() -> None:
    req = request(language_id=89, source_code="", additional_files="UEsFBg==")
    without = plan.build(req, PROJECT, Judge0Config(), {"run": b"echo"}, token="t")
    assert [e["name"] for e in without.mission["prepare"]["execute"]] == ["run 1"]
    assert without.mission["prepare"]["execute"][0]["command"] == ["/bin/bash", "run"]
    with_compile = plan.build(req, PROJECT, Judge0Config(), {"run": b"", "compile": b""}, token="t")
    assert with_compile.compiles


def test_a_zero_cpu_limit_is_the_largest_allowed() -> None:
    req = request(cpu_time_limit=0)
    assert plan.run_time_ms(req, Judge0Config()) == 16000
