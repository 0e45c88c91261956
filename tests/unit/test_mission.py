"""The mission format: defaults, validation with paths, macros and the normalised echo."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from orchestrator.errors import JudgeError
from orchestrator.mission import (
    Execute,
    MissionInvalid,
    Task,
    expand,
    expand_execute,
    expand_task_files,
    normalise,
    parse_mission,
    task_macros,
)
from tests.seed000 import seed_echo

URL = "https://callback.example/judge"

HELLO = {
    "return": {"url": URL},
    "prepare": {"execute": [{"command": ["echo", "hello world"], "stdout": "output.txt"}]},
}

# The "mission" of the reference hello world's callback.
SEED_000_ECHO = seed_echo(URL)


def mission_with(path: str, value: object) -> dict[str, Any]:
    """HELLO with ``value`` set at a dotted path such as ``prepare.execute.0.memory_limit``."""
    data: dict[str, Any] = copy.deepcopy(HELLO)
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[last] = value
    return data


def invalid(data: object) -> MissionInvalid:
    with pytest.raises(MissionInvalid) as info:
        parse_mission(data)
    return info.value


def paths(error: MissionInvalid) -> list[str]:
    return [e["path"] for e in error.errors]


# ---------------------------------------------------------------------------------------------
# Defaults and the echo


def test_hello_world_echo_is_seed_000() -> None:
    echo = normalise(parse_mission(HELLO))
    assert echo == SEED_000_ECHO
    assert list(echo) == ["return", "prepare", "tasks", "final", "tick"]


def test_echo_survives_json_and_parses_back_to_itself() -> None:
    echo = normalise(parse_mission(HELLO))
    again = normalise(parse_mission(json.dumps(echo)))
    assert again == echo


def test_image_and_format_are_echoed_only_when_set() -> None:
    data = mission_with("return.format", "json")
    data["image"] = "judge/python"
    echo = normalise(parse_mission(data))
    assert echo["image"] == "judge/python"
    assert echo["return"]["format"] == "json"
    echo = normalise(parse_mission(mission_with("return.format", "form")))
    assert "image" not in echo
    assert "format" not in echo["return"]


def test_payload_scalars_echoed_unchanged() -> None:
    payload = {"token": "s3cret", "n": 3, "x": 1.5, "flag": True, "none": None}
    echo = normalise(parse_mission(mission_with("return.payload", payload)))
    assert echo["return"]["payload"] == payload
    assert echo["return"]["payload"]["flag"] is True


def test_each_task_echoes_its_expanded_executes() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {
            "task": [{"macro": {"IN": "a.in"}}, {"macro": {"IN": "b.in"}, "file": {"x": "data:,"}}],
            "execute": [{"command": ["cat", "IN"], "stdin": "IN", "name": "t__TASK_ID__"}],
        },
    }
    echo = normalise(parse_mission(data))
    tasks = echo["tasks"]["task"]
    assert [t["execute"][0]["stdin"] for t in tasks] == ["a.in", "b.in"]
    assert [t["execute"][0]["command"] for t in tasks] == [["cat", "a.in"], ["cat", "b.in"]]
    assert [t["execute"][0]["name"] for t in tasks] == ["t0", "t1"]
    assert tasks[1]["file"] == {"x": "data:,"}
    assert tasks[1]["macro"] == {"IN": "b.in"}
    assert echo["tasks"]["execute"][0]["stdin"] == "IN"  # the template stays as submitted


# ---------------------------------------------------------------------------------------------
# Ranges, types, unknown keys


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_limit", 0),
        ("memory_limit", 2097153),
        ("time_limit", 0),
        ("time_limit", 60001),
        ("output_limit", 0),
        ("output_limit", 262145),
    ],
)
def test_execute_limit_out_of_range_names_its_path(field: str, value: int) -> None:
    error = invalid(mission_with(f"prepare.execute.0.{field}", value))
    assert error.path == f"mission.prepare.execute[0].{field}"
    assert str(value) in error.message


@pytest.mark.parametrize(
    ("field", "value"),
    [("memory_limit", 1), ("memory_limit", 2097152), ("time_limit", 60000), ("output_limit", 1)],
)
def test_execute_limit_bounds_are_inclusive(field: str, value: int) -> None:
    mission = parse_mission(mission_with(f"prepare.execute.0.{field}", value))
    assert getattr(mission.prepare.execute[0], field) == value


@pytest.mark.parametrize(("field", "value"), [("stdout", -1), ("stderr", 4097)])
def test_record_out_of_range_names_its_path(field: str, value: int) -> None:
    error = invalid(mission_with(f"prepare.execute.0.record.{field}", value))
    assert error.path == f"mission.prepare.execute[0].record.{field}"


def test_every_problem_is_listed() -> None:
    data = mission_with("prepare.execute.0.memory_limit", 0)
    data["prepare"]["execute"][0]["time_limit"] = 0
    data["final"] = {"execute": [{"command": []}]}
    error = invalid(data)
    assert set(paths(error)) == {
        "mission.prepare.execute[0].memory_limit",
        "mission.prepare.execute[0].time_limit",
        "mission.final.execute[0].command",
    }
    assert str(error) == f"{error.path}: {error.message}"
    assert isinstance(error, JudgeError)


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("prepare.execute.0", "memry_limit", "mission.prepare.execute[0].memry_limit"),
        ("prepare.execute.0.scope", "import_", "mission.prepare.execute[0].scope.import_"),
        ("return", "formt", "mission.return.formt"),
        ("tasks", "tasks", "mission.tasks.tasks"),
        ("", "retrun", "mission.retrun"),
    ],
)
def test_unknown_key_is_rejected_by_name(path: str, key: str, expected: str) -> None:
    error = invalid(mission_with(f"{path}.{key}" if path else key, 1))
    assert error.path == expected
    assert key in error.message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("prepare.execute.0.memory_limit", "65536", "mission.prepare.execute[0].memory_limit"),
        ("prepare.execute.0.memory_limit", 65536.0, "mission.prepare.execute[0].memory_limit"),
        ("prepare.execute.0.time_limit", True, "mission.prepare.execute[0].time_limit"),
        ("prepare.execute.0.record.enable", 1, "mission.prepare.execute[0].record.enable"),
        ("prepare.execute.0.command", "echo hi", "mission.prepare.execute[0].command"),
        ("prepare.execute.0.command", ["echo", 1], "mission.prepare.execute[0].command[1]"),
        ("prepare.execute.0.name", None, "mission.prepare.execute[0].name"),
        ("prepare.file", [], "mission.prepare.file"),
        ("tasks.task", [{"macro": {"A": 1}}], "mission.tasks.task[0].macro.A"),
        ("return.url", 5, "mission.return.url"),
        ("return.format", "xml", "mission.return.format"),
        ("return.payload", {"nested": {"a": 1}}, "mission.return.payload.nested"),
        ("return.payload", {"list": [1]}, "mission.return.payload.list"),
        ("return.payload", {"nan": float("nan")}, "mission.return.payload.nan"),
        ("tick", "false", "mission.tick"),
        ("image", "", "mission.image"),
    ],
)
def test_wrong_type_or_value_is_rejected(path: str, value: object, expected: str) -> None:
    assert invalid(mission_with(path, value)).path == expected


@pytest.mark.parametrize("missing", ["return.url", "prepare.execute.0.command"])
def test_required_field_missing(missing: str) -> None:
    data: dict[str, Any] = copy.deepcopy(HELLO)
    node: Any = data
    *parents, last = missing.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    error = invalid(data)
    assert error.path == "mission." + missing.replace(".execute.0.", ".execute[0].")
    assert error.message == "is required"


def test_return_is_optional_and_left_out_of_the_echo() -> None:
    data: dict[str, Any] = copy.deepcopy(HELLO)
    del data["return"]
    mission = parse_mission(data)
    assert mission.return_ is None
    assert list(normalise(mission)) == ["prepare", "tasks", "final", "tick"]


def test_return_null_means_no_return() -> None:
    data: dict[str, Any] = copy.deepcopy(HELLO)
    data["return"] = None
    assert "return" not in normalise(parse_mission(data))


@pytest.mark.parametrize("command", [[], [""], ["", "arg"], ["echo", "a\0b"]])
def test_bad_command_is_rejected(command: list[str]) -> None:
    error = invalid(mission_with("prepare.execute.0.command", command))
    assert error.path.startswith("mission.prepare.execute[0].command")


def test_empty_arguments_after_the_program_are_allowed() -> None:
    mission = parse_mission(mission_with("prepare.execute.0.command", ["printf", ""]))
    assert mission.prepare.execute[0].command == ["printf", ""]


def test_not_an_object() -> None:
    assert invalid([HELLO]).path == "mission"
    assert invalid("[1, 2]").path == "mission"


# ---------------------------------------------------------------------------------------------
# Paths and URLs


BAD_PATHS = [
    "/etc/passwd",
    "../up",
    "a/../../b",
    "a/..",
    ".",
    "./",
    "",
    "a\0b",
    "x" * 256,
    "/".join(["d" * 200] * 21),  # 4220 bytes
]


@pytest.mark.parametrize(
    ("field", "name"),
    [
        (field, name)
        for field in ("meta", "stdin", "stdout", "stderr")
        for name in BAD_PATHS
        if name or field == "meta"  # an empty stdin/stdout/stderr means no redirection
    ],
)
def test_bad_redirect_or_meta_path(field: str, name: str) -> None:
    error = invalid(mission_with(f"prepare.execute.0.{field}", name))
    assert error.path == f"mission.prepare.execute[0].{field}"


@pytest.mark.parametrize("name", [*BAD_PATHS, "dir/"])
def test_bad_file_name(name: str) -> None:
    error = invalid(mission_with("final.file", {name: "https://files.example/a"}))
    assert error.path in (f"mission.final.file.{name}", f"mission.final.file[{json.dumps(name)}]")


@pytest.mark.parametrize("name", BAD_PATHS)
@pytest.mark.parametrize("field", ["import", "export"])
def test_bad_scope_path(field: str, name: str) -> None:
    error = invalid(mission_with(f"prepare.execute.0.scope.{field}", ["ok", name]))
    assert error.path == f"mission.prepare.execute[0].scope.{field}[1]"


def test_good_paths_are_accepted() -> None:
    data = mission_with("prepare.file", {"src/main.c": "https://f.example/m.c", "a..b": "data:,"})
    data["prepare"]["execute"][0].update(
        {"stdin": "in/1.txt", "meta": "meta/0", "scope": {"import": ["src/", "x" * 255]}}
    )
    mission = parse_mission(data)
    assert mission.prepare.execute[0].scope.import_ == ["src/", "x" * 255]


def test_two_names_of_one_file_are_rejected() -> None:
    error = invalid(mission_with("prepare.file", {"a": "data:,1", "./a": "data:,2"}))
    assert error.path == "mission.prepare.file"


def test_imports_arriving_under_one_name_are_rejected() -> None:
    error = invalid(mission_with("prepare.execute.0.scope.import", ["a/x", "b/x"]))
    assert error.path == "mission.prepare.execute[0].scope.import"


@pytest.mark.parametrize(
    "url",
    [
        "http://files.example/a.txt",
        "https://files.example:8443/a?b=c",
        "data:,hello",
        "data:text/plain;base64,aGVsbG8=",
        "blob:" + "ab" * 20,
        "blob:" + "0f" * 32,
    ],
)
def test_file_url_schemes_accepted(url: str) -> None:
    mission = parse_mission(mission_with("prepare.file", {"a": url}))
    assert mission.prepare.file == {"a": url}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example/a",
        "file:///etc/passwd",
        "/etc/passwd",
        "http:///nohost",
        "http://host:notaport/",
        "http://host/a b",
        "data:no-comma",
        "blob:xyz",
        "blob:" + "AB" * 20,
    ],
)
def test_file_url_rejected(url: str) -> None:
    assert invalid(mission_with("prepare.file", {"a": url})).path == "mission.prepare.file.a"


@pytest.mark.parametrize("url", ["data:,x", "ftp://h/cb", "not a url", ""])
def test_callback_url_must_be_http(url: str) -> None:
    assert invalid(mission_with("return.url", url)).path == "mission.return.url"


@pytest.mark.parametrize("key", ["id", "mission", "mission_result"])
def test_payload_key_clash_rejected(key: str) -> None:
    error = invalid(mission_with("return.payload", {"token": "t", key: "x"}))
    assert paths(error) == [f"mission.return.payload.{key}"]


def test_task_id_macro_is_reserved() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {"task": [{}, {}, {"macro": {"__TASK_ID__": "7", "N": "1"}}]},
    }
    error = invalid(data)
    assert paths(error) == ["mission.tasks.task[2].macro.__TASK_ID__"]


# ---------------------------------------------------------------------------------------------
# JSON text


def test_json_string_input() -> None:
    mission = parse_mission(json.dumps(HELLO))
    assert normalise(mission) == SEED_000_ECHO
    assert parse_mission(json.dumps(HELLO).encode()).prepare.execute[0].stdout == "output.txt"


@pytest.mark.parametrize(
    ("text", "where"),
    [('{"return": }', "line 1 column 12"), ('{\n  "return": {"url": "x"},\n}', "line 3 column 1")],
)
def test_bad_json_says_where(text: str, where: str) -> None:
    error = invalid(text)
    assert error.path == "mission"
    assert where in error.message


@pytest.mark.parametrize("text", ['{"return": NaN}', "[" * 100_000, ""])
def test_unusable_json_is_mission_invalid(text: str) -> None:
    assert invalid(text).path == "mission"


# ---------------------------------------------------------------------------------------------
# Macros


@pytest.mark.parametrize(
    ("text", "macros", "expected"),
    [
        ("ABCD", {"A": "1", "AB": "2", "ABC": "3"}, "3D"),
        ("ABABA", {"A": "1", "AB": "2"}, "221"),
        ("A-B", {"A": "B", "B": "A"}, "B-A"),  # a replacement is never replaced again
        ("A", {"A": "AA"}, "AA"),
        ("x.y*", {".": "dot", "*": "star"}, "xdotystar"),  # keys are literal, not patterns
        ("abc", {"": "z"}, "abc"),  # empty keys are ignored
        ("", {"A": "1"}, ""),
        ("no macro here", {"ZZ": "1"}, "no macro here"),
    ],
)
def test_expand(text: str, macros: dict[str, str], expected: str) -> None:
    assert expand(text, macros) == expected


def test_task_macros_add_the_index() -> None:
    task = Task.model_validate({"macro": {"N": "5"}})
    assert task_macros(3, task) == {"N": "5", "__TASK_ID__": "3"}


def test_value_containing_a_key_is_not_reexpanded() -> None:
    task = Task.model_validate({"macro": {"IN": "in__TASK_ID__"}})
    assert expand("IN.txt", task_macros(4, task)) == "in__TASK_ID__.txt"


def test_expand_execute_touches_every_string() -> None:
    execute = Execute.model_validate(
        {
            "name": "run N",
            "command": ["./N", "--case=N"],
            "meta": "N.meta",
            "stdin": "N.in",
            "stdout": "N.out",
            "stderr": "N.err",
            "memory_limit": 1024,
            "scope": {"enable": True, "import": ["dir/N"], "export": ["N.res"]},
        }
    )
    done = expand_execute(execute, {"N": "9", "__TASK_ID__": "0"})
    assert done.model_dump(by_alias=True, exclude_none=True) == {
        "name": "run 9",
        "command": ["./9", "--case=9"],
        "memory_limit": 1024,
        "time_limit": 60000,
        "output_limit": 262144,
        "meta": "9.meta",
        "stdin": "9.in",
        "stdout": "9.out",
        "stderr": "9.err",
        "record": {"enable": True, "stdout": 1024, "stderr": 1024},
        "scope": {"enable": True, "import": ["dir/9"], "export": ["9.res"]},
    }
    assert execute.stdin == "N.in"  # the template is left alone


def test_expand_execute_rejects_an_invalid_result() -> None:
    execute = Execute.model_validate({"command": ["cat"], "stdout": "OUT"})
    with pytest.raises(MissionInvalid) as info:
        expand_execute(execute, {"OUT": "/tmp/out"}, path="x.execute[0]")
    assert info.value.path == "x.execute[0].stdout"


def test_macros_apply_to_task_file_names_not_urls() -> None:
    task = Task.model_validate({"macro": {"C": "case"}, "file": {"C__TASK_ID__.in": "http://h/C"}})
    assert expand_task_files(task, task_macros(2, task)) == {"case2.in": "http://h/C"}


def test_task_files_reach_the_mission_result_names() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {"task": [{"file": {"__TASK_ID__.in": "data:,0"}}, {"file": {"x": "data:,"}}]},
    }
    mission = parse_mission(data)
    first = mission.tasks.task[0]
    assert expand_task_files(first, task_macros(0, first)) == {"0.in": "data:,0"}


def test_macro_value_making_an_execute_path_invalid_is_rejected() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {
            "task": [{"macro": {"D": "ok"}}, {"macro": {"D": ".."}}],
            "execute": [{"command": ["true"]}, {"command": ["run"], "stdout": "D/out"}],
        },
    }
    error = invalid(data)
    assert paths(error) == ["mission.tasks.task[1].execute[1].stdout"]
    assert "macro" in error.message


def test_macro_value_making_a_task_file_name_invalid_is_rejected() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {"task": [{"macro": {"F": "/abs"}, "file": {"F.in": "data:,"}}]},
    }
    assert paths(invalid(data)) == ['mission.tasks.task[0].file["F.in"]']


def test_task_file_names_colliding_after_expansion_are_rejected() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {"task": [{"file": {"in0": "data:,a", "in__TASK_ID__": "data:,b"}}]},
    }
    assert paths(invalid(data)) == ["mission.tasks.task[0].file.in__TASK_ID__"]


def test_macro_emptying_the_program_is_rejected() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {"task": [{"macro": {"PROG": ""}}], "execute": [{"command": ["PROG", "x"]}]},
    }
    assert paths(invalid(data)) == ["mission.tasks.task[0].execute[0].command"]


def _parallel(parallel: Any, scoped: bool = True) -> dict[str, Any]:
    return {
        "return": {"url": URL},
        "tasks": {
            "task": [{}, {}],
            "execute": [{"command": ["true"], "scope": {"enable": scoped}}],
            "parallel": parallel,
        },
    }


def _interactive(**interactor: Any) -> dict[str, Any]:
    return {
        "return": {"url": "https://cb.example/"},
        "prepare": {
            "execute": [{"command": ["./a"], "interactor": {"command": ["./i"], **interactor}}]
        },
    }


def test_parallel_tasks_are_an_opt_in_echoed_only_when_used() -> None:
    assert parse_mission(HELLO).tasks.parallel == 1
    assert "parallel" not in normalise(parse_mission(HELLO))["tasks"]
    assert normalise(parse_mission(_parallel(3)))["tasks"]["parallel"] == 3
    assert "parallel" not in normalise(parse_mission(_parallel(1, scoped=False)))["tasks"]


@pytest.mark.parametrize(
    ("parallel", "scoped", "message"),
    [
        (2, False, "every execute of tasks.execute is scoped"),
        (0, True, "at least 1"),
        (65, True, "at most 64"),
        ("2", True, "integer"),
    ],
)
def test_parallel_tasks_need_scoped_executes_and_a_sane_count(
    parallel: Any, scoped: bool, message: str
) -> None:
    error = invalid(_parallel(parallel, scoped))
    assert paths(error) == ["mission.tasks.parallel"]
    assert message in error.errors[0]["message"]


def test_an_interactor_gets_the_defaults_of_an_execute() -> None:
    m = parse_mission(_interactive())
    inter = m.prepare.execute[0].interactor
    assert inter is not None
    assert (inter.time_limit, inter.memory_limit, inter.output_limit) == (60000, 65536, 262144)
    assert (inter.meta, inter.stderr, inter.private) == ("interactor.meta", "", [])
    # Without one, the echo has no "interactor" key at all.
    plain = normalise(
        parse_mission(
            {
                "return": {"url": "https://cb.example/"},
                "prepare": {"execute": [{"command": ["true"]}]},
            }
        )
    )
    assert "interactor" not in plain["prepare"]["execute"][0]


@pytest.mark.parametrize(
    ("interactor", "path"),
    [
        ({"private": ["../etc/shadow"]}, "mission.prepare.execute[0].interactor.private[0]"),
        ({"colour": "red"}, "mission.prepare.execute[0].interactor.colour"),
        ({"time_limit": 0}, "mission.prepare.execute[0].interactor.time_limit"),
        ({"command": []}, "mission.prepare.execute[0].interactor.command"),
        ({"meta": "meta"}, "mission.prepare.execute[0]"),
        ({"private": ["meta"]}, "mission.prepare.execute[0]"),
        ({"stderr": "./meta"}, "mission.prepare.execute[0]"),
    ],
)
def test_interactor_errors_name_their_path(interactor: dict[str, Any], path: str) -> None:
    with pytest.raises(MissionInvalid) as e:
        parse_mission(_interactive(**interactor))
    assert e.value.path == path, e.value.errors


def test_stdin_and_stdout_are_the_interactors_pipes() -> None:
    data = _interactive()
    data["prepare"]["execute"][0]["stdout"] = "out.txt"
    with pytest.raises(MissionInvalid) as e:
        parse_mission(data)
    assert e.value.path == "mission.prepare.execute[0]"
    assert "stdout" in e.value.message


def test_macros_reach_the_interactor() -> None:
    data = {
        "return": {"url": "https://cb.example/"},
        "tasks": {
            "task": [{"macro": {"N": "7"}}],
            "execute": [
                {"command": ["./a"], "interactor": {"command": ["./i", "N"], "private": ["tN.ans"]}}
            ],
        },
    }
    echoed = normalise(parse_mission(data))["tasks"]["task"][0]["execute"][0]
    assert echoed["interactor"]["command"] == ["./i", "7"]
    assert echoed["interactor"]["private"] == ["t7.ans"]


def test_runtime_is_echoed_only_when_set() -> None:
    base = {"return": {"url": "https://cb.example/"}}
    assert "runtime" not in normalise(parse_mission(base))
    assert normalise(parse_mission({**base, "runtime": "runsc"}))["runtime"] == "runsc"
    with pytest.raises(MissionInvalid) as e:
        parse_mission({**base, "runtime": ""})
    assert e.value.path == "mission.runtime"
