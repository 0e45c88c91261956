"""The page's judging rules (service/web/static/judging.js), run in the browser on the module as
served: the comparison, the diff, output cut at the record cap, and the mission a Run makes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from playwright.sync_api import Page

PYTHON = {
    "id": "python3",
    "source_file": "script.py",
    "compile": None,
    "run": ["python3", "{file}"],
    "image": "judge/python3",
}
C = {
    "id": "c",
    "source_file": "main.c",
    "compile": ["gcc", "-o", "a.out", "{file}"],
    "compile_limits": {"time_limit": 45000, "memory_limit": 262144},
    "run": ["./a.out"],
    "image": "judge/cpp",
}


@pytest.fixture
def rules(page: Page) -> Page:
    page.goto("/")
    return page


def call(page: Page, name: str, *args: Any) -> Any:
    """``judging.<name>(...args)`` in the page."""
    return page.evaluate(
        "([name, args]) => import('/playground/judging.js').then((m) => m[name](...args))",
        [name, list(args)],
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def entry(stdout: str, status: str = "") -> dict[str, Any]:
    return {"meta": {"status": status}, "record": {"stdout": b64(stdout), "stderr": ""}}


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        ("3", "3\n", True),
        ("a b\nc", "a b   \nc\t\n\n\n", True),
        ("1\r\n2\r\n", "1\n2", True),
        ("1\n\n2", "1\n2", False),  # an empty line inside counts
        ("  x", "x", False),  # leading whitespace counts
        ("x", "X", False),
        ("x", "x\u00a0", False),  # only ASCII whitespace is trailing whitespace (as Judge0's)
        ("x\f\v", "x", True),
    ],
)
def test_trailing_whitespace_per_line_and_at_the_end_is_ignored(
    rules: Page, expected: str, actual: str, same: bool
) -> None:
    assert call(rules, "sameOutput", expected, actual) is same


def test_the_diff_marks_expected_and_actual_lines(rules: Page) -> None:
    diff = call(rules, "diffLines", "1\n2\n3\n", "1\n5\n3\n4\n")
    assert [(d["op"], d["text"]) for d in diff] == [
        (" ", "1"),
        ("-", "2"),
        ("+", "5"),
        (" ", "3"),
        ("+", "4"),
    ]


def test_verdicts_from_the_meta_and_the_comparison(rules: Page) -> None:
    assert call(rules, "judgeCase", entry("3\n"), "3", True)["verdict"] == "AC"
    wrong = call(rules, "judgeCase", entry("4\n"), "3", True)
    assert wrong["verdict"] == "WA"
    assert wrong["diff"] == [{"op": "-", "text": "3"}, {"op": "+", "text": "4"}]
    assert call(rules, "judgeCase", entry("3\n", "TLE"), "3", True)["verdict"] == "TLE"
    assert call(rules, "judgeCase", entry("anything"), "", True)["verdict"] == "OK"
    assert call(rules, "judgeCase", entry(""), "3", False)["verdict"] == "CE"


def test_output_cut_at_the_record_cap_is_not_compared_silently(rules: Page) -> None:
    cap = call(rules, "judgeCase", entry("a\n" * 2048), "a\n" * 5000, True)
    assert cap["verdict"] == "CUT"
    assert cap["stdoutCut"] is True
    # A difference within what was reported is a wrong answer all the same.
    early = call(rules, "judgeCase", entry("b\n" + "a\n" * 2047), "a\n" * 5000, True)
    assert early["verdict"] == "WA"


def test_a_run_compiles_once_and_runs_one_task_per_case(rules: Page) -> None:
    cases = [{"input": "1 2", "expected": "3"}, {"input": "", "expected": ""}]
    limits = {"cpuMs": 2000, "memoryKib": 262144}
    mission = call(rules, "buildMission", C, "int main(){}", cases, limits, True)
    [compile_] = mission["prepare"]["execute"]
    assert compile_["command"][-4:] == ["gcc", "-o", "a.out", "main.c"]
    assert compile_["time_limit"] == 45000  # the language's need beats the page's 30 s
    assert compile_["memory_limit"] == 524288  # the page's 512 MiB beats the language's
    assert list(mission["prepare"]["file"]) == ["prog/main.c"]
    [run] = mission["tasks"]["execute"]
    assert (run["time_limit"], run["memory_limit"], run["stdin"]) == (2000, 262144, "input.txt")
    assert run["scope"] == {"enable": True, "import": ["prog", "input.txt"]}
    assert [sorted(t["file"]) for t in mission["tasks"]["task"]] == [
        ["expected.txt", "input.txt"],
        ["input.txt"],
    ]
    assert mission["language"] == "c"
    assert "image" not in mission  # the server takes it from its registry
    # The page reads back what it made (a reload restores the editor from the mission).
    made = call(rules, "readMission", mission)
    assert made["source"] == "int main(){}"
    assert made["cases"] == cases
    assert made["scoped"] is True
    assert made["limits"] == limits


def test_an_interpreted_language_has_no_compile_step(rules: Page) -> None:
    limits = {"cpuMs": 1000, "memoryKib": 65536}
    cases = [{"input": "x", "expected": ""}]
    mission = call(rules, "buildMission", PYTHON, "print(1)", cases, limits, False)
    assert mission["prepare"]["execute"] == []
    [run] = mission["tasks"]["execute"]
    assert run["command"][-2:] == ["python3", "script.py"]
    assert "scope" not in run


def test_the_status_panel_reads_health_and_metrics(rules: Page) -> None:
    health = {
        "ok": False,
        "checks": {
            "engine": {"ok": False, "error": "engine not reachable", "down_s": 12.4},
            "database": {"ok": True, "engine": "postgresql"},
        },
        "pool": {"images": {"judge/cpp": {"ready": 2, "target": 3}}, "hits": 5, "misses": 1},
    }
    text = (
        "# HELP judge_queue_depth x\njudge_queue_depth 7.0\njudge_running 2.0\n"
        'judge_callbacks{state="pending"} 3.0\njudge_callbacks{state="failed"} 1.0\n'
    )
    rows = rules.evaluate(
        """([health, text]) => import('/playground/status.js')
            .then((m) => m.statusRows(health, m.parseMetrics(text)))""",
        [health, text],
    )
    assert {r["label"]: (r["value"], r["ok"]) for r in rows} == {
        "Engine": ("engine not reachable (down for 12 s)", False),
        "Database": ("postgresql", True),
        "Pool": ("2 of 3 warm · 5 hits, 1 misses", None),
        "Queue depth": ("7", None),
        "Running": ("2", None),
        "Callbacks pending": ("3", None),
    }
