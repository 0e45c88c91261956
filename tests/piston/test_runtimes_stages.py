"""Version resolution, the execute as a mission, and the mission's result as Piston stages."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from orchestrator.mission import parse_mission
from orchestrator.sandbox.tar import build_tar
from service.frontdoors.piston.request import parse_execute
from service.frontdoors.piston.runtimes import pinned_major, resolve, satisfies
from service.frontdoors.piston.stages import cap_text, piston_answer, stage_doc
from service.frontdoors.piston.translate import STDIN, mission_plan, record_bytes
from tests.piston.fakecore import meta
from tests.piston.fixtures import PYTHON, RUNTIMES, body, settings

OLDER = dataclasses.replace(PYTHON, version="3.9.1")


def test_npm_ranges_and_the_latest_match() -> None:
    both = (OLDER, PYTHON)
    assert resolve(both, "python", "*", strict=True) is PYTHON
    assert resolve(both, "python", "3.9.x", strict=True) is OLDER
    assert resolve(both, "python", "<3.10", strict=True) is OLDER
    assert resolve(both, "python", "^3.8 || ^4", strict=True) is PYTHON
    assert resolve(both, "python", "~3.9", strict=True) is OLDER
    assert resolve(both, "python", "3.10.0", strict=True) is None
    assert resolve(both, "python", "3.10.0", strict=False) is PYTHON
    assert resolve(both, "python", "4.0.0", strict=False) is None
    assert resolve(both, "python", ">=3.12", strict=False) is None  # not a pinned version
    assert resolve(both, "nope", "*", strict=False) is None


def test_selectors_that_pin_a_major() -> None:
    assert [pinned_major(s) for s in ("3.10.0", "3.x", "v18.15.0", "10.2.0-alpha.1", "7")] == [
        3,
        3,
        18,
        10,
        7,
    ]
    assert [pinned_major(s) for s in ("*", "^3", ">=3", "3 || 4", "x" * 200)] == [None] * 5


def test_garbage_selectors_match_nothing() -> None:
    assert not satisfies("3.11.2", "garbage")
    assert not satisfies("3.11.2", "3" * 500)


def test_a_compiled_execute_as_a_mission() -> None:
    job = parse_execute(
        body(
            language="c",
            version="12.x",
            files=[{"content": "int main(){}"}, {"name": "inc/x.h", "content": ""}],
            stdin="5",
            args=["a", "b"],
            run_memory_limit=1_000_000,
        ),
        RUNTIMES,
        settings(),
    )
    plan = mission_plan(job, settings())
    parse_mission(plan.mission)  # a valid mission
    compile_, run = plan.mission["prepare"]["execute"]
    assert compile_["command"] == ["gcc", "-x", "c", "-O2", "-o", "a.out", "file0.code", "-lm"]
    assert run["command"] == ["./a.out", "a", "b"]
    assert run["stdin"] == STDIN
    assert compile_["stdin"] == ""
    assert run["memory_limit"] == 977  # KiB, rounded up
    assert (compile_["time_limit"], run["time_limit"]) == (10_000, 3000)
    assert compile_["memory_limit"] == 524288  # the language's compile needs, over the request's
    assert plan.mission["image"] == "judge/default"
    assert plan.inputs == {"file0.code": b"int main(){}", "inc/x.h": b"", STDIN: b"5\n"}
    assert [(s.name, s.index) for s in plan.stages] == [("compile", 0), ("run", 1)]
    assert plan.collect == []


def test_an_interpreted_execute_has_no_compile_stage() -> None:
    plan = mission_plan(parse_execute(body(stdin="x\n"), RUNTIMES, settings()), settings())
    (run,) = plan.mission["prepare"]["execute"]
    assert run["command"] == ["python3", "main.py"]  # the entry keeps its name
    assert plan.inputs[STDIN] == b"x\n"


def test_records_or_collected_files_by_the_cap() -> None:
    assert record_bytes(10) == 44
    assert record_bytes(1023) == 4096
    assert record_bytes(1024) == 4096
    assert record_bytes(1025) == 0
    plan = mission_plan(parse_execute(body(), RUNTIMES, settings()), settings(output_max_size=5000))
    assert plan.collect == [".piston/run.out", ".piston/run.err", ".piston/run.output"]
    assert plan.mission["prepare"]["execute"][0]["record"]["enable"] is False


def test_cap_text() -> None:
    assert cap_text(b"hello", 3, 0) == ("hel", True)
    assert cap_text(b"hello", 5, 0) == ("hello", False)
    assert cap_text("é".encode() * 3, 3, 0) == ("ééé", False)
    # A full record may end inside a character and the stream may go on: over.
    full = ("é" * 3).encode()[:5]
    assert cap_text(full, 3, 5) == ("éé", True)
    assert cap_text(b"ab", 3, 16) == ("ab", False)


def stage(m: dict[str, Any], out: bytes = b"", err: bytes = b"", cap: int = 1024) -> dict[str, Any]:
    return stage_doc({"meta": m}, out, err, cap, 0)


def test_a_clean_run() -> None:
    assert stage(meta(), b"hi\n", b"warn\n") == {
        "stdout": "hi\n",
        "stderr": "warn\n",
        "code": 0,
        "signal": None,
        "output": "hi\nwarn\n",
        "memory": 1024000,
        "message": None,
        "status": None,
        "cpu_time": 12,
        "wall_time": 20,
    }


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        (meta(status="RE", **{"exit-code": 3}), ("RE", 3, None, "Exited with error status 3")),
        (meta(status="RE", signal=11), ("SG", None, "SIGSEGV", "Caught fatal signal 11")),
        (
            meta(status="TLE", message="CPU time limit exceeded (3000 ms)"),
            ("TO", None, "SIGKILL", "Time limit exceeded"),
        ),
        (
            meta(status="TLE", message="real time limit exceeded (4500 ms)"),
            ("TO", None, "SIGKILL", "Time limit exceeded (wall clock)"),
        ),
        (meta(status="MLE", signal=9), ("SG", None, "SIGKILL", "Memory limit exceeded")),
        (meta(status="OLE", signal=25), ("SG", None, "SIGXFSZ", "File size limit exceeded")),
        (meta(status="SE", message="sandbox gone"), ("XX", None, None, "sandbox gone")),
        (
            meta(status="RE", signal=9, message="process limit exceeded (64)"),
            ("SG", None, "SIGKILL", "Process limit exceeded"),
        ),
    ],
)
def test_verdicts(m: dict[str, Any], expected: tuple[Any, ...]) -> None:
    got = stage(m)
    assert (got["status"], got["code"], got["signal"], got["message"]) == expected


def test_output_over_the_cap() -> None:
    got = stage(meta(), b"x" * 10, b"", cap=4)
    assert (got["stdout"], got["status"], got["message"], got["code"]) == (
        "xxxx",
        "OL",
        "stdout length exceeded",
        0,
    )
    err = stage(meta(status="OLE", signal=25), b"", b"y" * 10, cap=4)
    assert (err["stderr"], err["status"], err["signal"], err["code"]) == (
        "yyyy",
        "EL",
        "SIGKILL",
        None,
    )


def test_output_before_a_timeout_is_kept() -> None:
    got = stage(meta(status="TLE", message="real time limit exceeded (1 ms)"), b"partial")
    assert (got["stdout"], got["status"]) == ("partial", "TO")


def record(out: bytes = b"", err: bytes = b"") -> dict[str, str]:
    return {"stdout": base64.b64encode(out).decode(), "stderr": base64.b64encode(err).decode()}


def test_a_compile_error_is_the_run_too() -> None:
    job = parse_execute(body(language="c", version="*"), RUNTIMES, settings())
    plan = mission_plan(job, settings())
    result = {
        "prepare": {
            "execute": [
                {"meta": meta(status="RE", **{"exit-code": 1}), "record": record(err=b"error")},
                {
                    "meta": meta(status="RE", message="command './main' not found"),
                    "record": record(),
                },
            ]
        }
    }
    answer = piston_answer(job, plan, result, {}, 1024)
    assert answer["compile"]["stderr"] == "error"
    assert answer["run"] == answer["compile"]
    assert (answer["language"], answer["version"]) == ("c", "12.2.0")


def test_a_compiled_run() -> None:
    job = parse_execute(body(language="c", version="*"), RUNTIMES, settings())
    plan = mission_plan(job, settings())
    result = {
        "prepare": {
            "execute": [
                {"meta": meta(), "record": record()},
                {"meta": meta(**{"exit-code": 0}), "record": record(b"42\n")},
            ]
        }
    }
    answer = piston_answer(job, plan, result, {}, 1024)
    assert answer["compile"]["code"] == 0
    assert answer["run"]["stdout"] == "42\n"


def test_collected_outputs_when_the_cap_is_large() -> None:
    config = settings(output_max_size=5000)
    job = parse_execute(body(), RUNTIMES, config)
    plan = mission_plan(job, config)
    result = {"prepare": {"execute": [{"meta": meta(), "record": record()}]}}
    collected = {
        ".piston/run.out": build_tar({"run.out": b"o" * 6000}),
        ".piston/run.err": build_tar({"run.err": b"e"}),
    }
    answer = piston_answer(job, plan, result, collected, 5000)
    assert "compile" not in answer
    assert answer["run"]["stdout"] == "o" * 5000
    assert answer["run"]["stderr"] == "e"
    assert answer["run"]["status"] == "OL"
