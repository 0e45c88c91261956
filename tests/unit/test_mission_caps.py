"""Hostile missions that ask for unbounded work are refused before the work is done.

Each case is the small request of an attacker: many tasks times many executes, one large macro
value used many times, deep nesting. The refusal names the field, and the memory used while
refusing stays near the size of the request itself (tracemalloc), so nothing was expanded.
"""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.mission import (
    MissionCaps,
    MissionInvalid,
    MissionTooLarge,
    expand,
    has_control,
    normalise,
    parse_mission,
)
from orchestrator.mission.caps import _check_depth
from orchestrator.mission.caps import _expanded_bytes as expanded_bytes

URL = "http://example.com/cb"


def mission(**parts: Any) -> dict[str, Any]:
    return {"return": {"url": URL}, **parts}


def peak_bytes(fn: Callable[[], object]) -> int:
    """The peak of memory newly allocated while ``fn`` runs."""
    tracemalloc.start()
    try:
        try:
            fn()
        except MissionInvalid:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_million_planned_executes_are_refused_without_expanding_them() -> None:
    doc = mission(
        tasks={
            "task": [{}] * 1000,
            "execute": [{"command": ["run", "__TASK_ID__"]}] * 1000,
        }
    )
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(doc)
    assert got.value.path == "mission.tasks"
    assert "1000000 executes" in got.value.message
    assert "10000" in got.value.message
    assert peak_bytes(lambda: parse_mission(doc)) < 1 << 20


def test_twenty_thousand_pairs_of_the_report_are_refused_from_json_text() -> None:
    text = json.dumps(mission(tasks={"task": [{}] * 200, "execute": [{"command": ["x"]}] * 100}))
    assert len(text) < 4096
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(text)
    assert got.value.path == "mission.tasks"


def test_too_many_tasks_even_without_executes() -> None:
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(mission(tasks={"task": [{}] * 10_001}))
    assert got.value.path == "mission.tasks.task"


def test_a_big_macro_value_is_refused_at_its_key() -> None:
    doc = mission(
        tasks={
            "task": [{"macro": {"BIG": "x" * (1 << 20)}}],
            "execute": [{"command": ["echo"] + ["BIG"] * 2000}],
        }
    )
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(doc)
    assert got.value.path == "mission.tasks.task[0].macro.BIG"


def test_expansion_over_the_byte_cap_is_refused_before_expanding() -> None:
    """1 MiB used 2000 times would be 2 GB: refused at the task, with memory near the input."""
    caps = MissionCaps(max_macro_value_bytes=2 << 20)
    doc = mission(
        tasks={
            "task": [{"macro": {"BIG": "x" * (1 << 20)}}],
            "execute": [{"command": ["echo"] + ["BIG"] * 2000}],
        }
    )
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(doc, caps)
    assert got.value.path == "mission.tasks.task[0]"
    assert "after macro expansion" in got.value.message
    assert peak_bytes(lambda: parse_mission(doc, caps)) < 4 << 20


def test_many_tasks_repeating_a_long_template_are_refused_unexpanded() -> None:
    """Macros that shrink cannot hide the cost of scanning a long template once per task."""
    doc = mission(
        tasks={
            "task": [{"macro": {"x": ""}}] * 100,
            "execute": [{"command": ["x" * (200 << 10)]}],
        }
    )
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(doc)
    assert got.value.path == "mission.tasks"


def test_too_many_macros_in_a_task() -> None:
    doc = mission(tasks={"task": [{}, {"macro": {f"K{i}": "v" for i in range(300)}}]})
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(doc)
    assert got.value.path == "mission.tasks.task[1].macro"


def test_deep_nesting_is_refused_with_its_path() -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    doc = {"return": {"url": URL, "payload": {"a": deep}}}
    with pytest.raises(MissionInvalid) as got:
        parse_mission(doc)
    assert "nested more than 32 levels" in got.value.message
    assert got.value.path.startswith("mission.return.payload.a[0][0]")


def test_nesting_far_beyond_the_parser_is_refused_too() -> None:
    text = '{"return": {"url": "' + URL + '"}, "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises(MissionInvalid) as got:
        parse_mission(text)
    assert got.value.path == "mission"


def test_missions_at_the_caps_are_accepted_and_echoed() -> None:
    caps = MissionCaps(max_executes=100, max_expanded_bytes=1 << 20)
    doc = mission(
        prepare={"execute": [{"command": ["true"]}] * 10},
        tasks={
            "task": [{"macro": {"IN": f"{i}.in"}, "file": {"IN": "data:,1"}} for i in range(9)],
            "execute": [{"command": ["sh", "-c", "cat IN"], "stdin": "IN"}] * 10,
        },
    )
    parsed = parse_mission(doc, caps)
    echo = normalise(parsed)
    assert echo["tasks"]["task"][8]["execute"][9]["stdin"] == "8.in"
    with pytest.raises(MissionTooLarge):
        parse_mission({**doc, "final": {"execute": [{"command": ["true"]}]}}, caps)


@pytest.mark.parametrize(
    ("strings", "macros"),
    [
        (["abc", "aXbX", ""], {"X": "12345"}),
        (["XXYXY"], {"X": "", "XY": "long value", "Y": "é"}),
        (["__TASK_ID__/in"], {"__TASK_ID__": "17"}),
        (["ééé"], {"é": "ab"}),
        (["no macro here"], {}),
    ],
)
def test_expanded_size_is_computed_exactly(strings: list[str], macros: dict[str, str]) -> None:
    want = sum(len(expand(s, macros).encode()) for s in strings)
    assert expanded_bytes(strings, macros) == want


NAMES = ["a\nb", "x\u001by", "tab\there", "del\x7f", "c1\u0085x", "dir/\rname"]


@pytest.mark.parametrize("name", NAMES)
def test_control_characters_in_file_names_are_refused(name: str) -> None:
    with pytest.raises(MissionInvalid) as got:
        parse_mission(mission(prepare={"file": {name: "data:,x"}}))
    assert got.value.path == f"mission.prepare.file[{json.dumps(name, ensure_ascii=False)}]"
    assert "control character" in got.value.message


@pytest.mark.parametrize("field", ["stdin", "stdout", "stderr", "meta"])
def test_control_characters_in_redirections_are_refused(field: str) -> None:
    with pytest.raises(MissionInvalid) as got:
        parse_mission(mission(prepare={"execute": [{"command": ["true"], field: "o\nut"}]}))
    assert got.value.path == f"mission.prepare.execute[0].{field}"


def test_control_characters_in_scope_paths_and_after_expansion_are_refused() -> None:
    with pytest.raises(MissionInvalid) as got:
        parse_mission(
            mission(
                prepare={
                    "execute": [
                        {"command": ["true"], "scope": {"enable": True, "export": ["a\x1b"]}}
                    ]
                }
            )
        )
    assert got.value.path == "mission.prepare.execute[0].scope.export[0]"
    with pytest.raises(MissionInvalid) as got:
        parse_mission(
            mission(
                tasks={
                    "task": [{"macro": {"N": "a\nb"}}],
                    "execute": [{"command": ["true"], "stdout": "N"}],
                }
            )
        )
    assert got.value.path == "mission.tasks.task[0].execute[0].stdout"
    assert "after macro expansion" in got.value.message


def test_non_utf8_names_are_refused() -> None:
    with pytest.raises(MissionInvalid) as got:
        parse_mission(
            '{"return": {"url": "http://e.com"}, "prepare": {"file": {"\\udc80": "data:,"}}}'
        )
    assert got.value.path.startswith("mission.prepare.file")


def test_control_characters_are_c0_del_and_c1_exactly() -> None:
    for cp in range(sys.maxunicode + 1):
        assert has_control(chr(cp)) == (cp < 0x20 or 0x7F <= cp <= 0x9F), hex(cp)


@pytest.mark.parametrize(
    "c", [" ", "\t", "\x1c", "\x85", "\xa0", "\u2028", "\u3000", "\x7f", "\x00"]
)
def test_whitespace_and_control_characters_in_callback_urls_are_refused(c: str) -> None:
    assert c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F
    with pytest.raises(MissionInvalid) as got:
        parse_mission(mission(**{"return": {"url": f"http://e.com/a{c}b"}}))
    assert "whitespace or control characters" in got.value.message


def test_other_characters_in_callback_urls_are_accepted() -> None:
    url = "http://e.com/\u00e9\x80\u200b~"
    assert parse_mission(mission(**{"return": {"url": url}})).return_.url == url


def test_control_characters_in_arguments_stay_allowed() -> None:
    parsed = parse_mission(mission(prepare={"execute": [{"command": ["printf", "a\nb\tc"]}]}))
    assert parsed.prepare.execute[0].command == ["printf", "a\nb\tc"]


@pytest.mark.parametrize(
    "key", [" id", "id\u0000", "mission_result\n", "a b", "x" * 65, "", "ключ", "a=b", "a&b"]
)
def test_payload_keys_outside_the_safe_alphabet_are_refused(key: str) -> None:
    with pytest.raises(MissionInvalid) as got:
        parse_mission({"return": {"url": URL, "payload": {key: 1}}})
    assert got.value.path.startswith("mission.return.payload")
    assert "A-Z a-z 0-9" in got.value.message or "reserved" in got.value.message


@pytest.mark.parametrize("key", ["job", "a.b-c_D9", "x" * 64])
def test_payload_keys_in_the_safe_alphabet_are_accepted(key: str) -> None:
    got = parse_mission({"return": {"url": URL, "payload": {key: 1}}})
    assert got.return_.payload == {key: 1}


def _flat_expand(text: str, macros: dict[str, str]) -> str:
    """The reference: a flat alternation, longest key first."""
    import re

    keys = sorted((k for k in macros if k), key=lambda k: (-len(k), k))
    if not keys or not text:
        return text
    return re.sub("|".join(re.escape(k) for k in keys), lambda m: macros[m.group(0)], text)


def test_the_prefix_tree_expands_exactly_like_a_flat_alternation() -> None:
    import random

    rng = random.Random(11)
    for _ in range(2000):
        keys = {"".join(rng.choices("ab_", k=rng.randint(1, 4))): str(i) for i in range(5)}
        text = "".join(rng.choices("ab_c", k=rng.randint(0, 20)))
        assert expand(text, keys) == _flat_expand(text, keys), (text, keys)
    for _ in range(30):  # longer than one scanning window
        keys = {"".join(rng.choices("ab_", k=rng.randint(1, 4))): str(i) for i in range(5)}
        text = "".join(rng.choices("ab_c", k=rng.randint(16_000, 50_000)))
        assert expand(text, keys) == _flat_expand(text, keys)


def test_a_long_macro_key_is_refused_at_its_key() -> None:
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(mission(tasks={"task": [{"macro": {"K" * 33: "v"}}]}))
    assert got.value.path == f"mission.tasks.task[0].macro.{'K' * 33}"


def test_keys_sharing_long_prefixes_cost_one_pass() -> None:
    """The worst case for a flat alternation: 256 keys that share prefixes, a template made of
    that prefix. Bounded work: it finishes (the per-test timeout would catch a quadratic scan)."""
    keys = {"_" * i + "K": "v" for i in range(1, 31)}
    doc = mission(tasks={"task": [{"macro": keys}], "execute": [{"command": ["_" * (4 << 20)]}]})
    parsed = parse_mission(doc)
    assert parsed.tasks.execute[0].command[0] == "_" * (4 << 20)


def test_too_many_files_are_refused_from_counts_before_any_entry_is_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import orchestrator.mission.parse as parse_module

    def never(*_: object, **__: object) -> object:
        raise AssertionError("an entry was validated before the file count was checked")

    # 50,000 file entries (the mission): refused from the lengths of three dicts, with
    # the model's validation never reached.
    doc = mission(
        prepare={"file": {f"f{i}": "data:,x" for i in range(20_000)}},
        tasks={"task": [{"file": {f"t{i}": "data:,x" for i in range(30)}}] * 1000},
    )
    monkeypatch.setattr(parse_module.Mission, "model_validate", never)
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(doc, MissionCaps(max_files=10_000))
    assert got.value.path == "mission.tasks.task"  # the part naming the most (30,000)
    assert "names 50000 files" in got.value.message
    assert "at most 10000" in got.value.message


def test_files_at_the_cap_are_accepted() -> None:
    doc = mission(prepare={"file": {f"f{i}": "data:,x" for i in range(5)}})
    assert len(parse_mission(doc, MissionCaps(max_files=5)).prepare.file) == 5
    with pytest.raises(MissionTooLarge) as got:
        parse_mission(doc, MissionCaps(max_files=4))
    assert got.value.path == "mission.prepare.file"


def test_nesting_up_to_the_limit_is_accepted_and_one_more_refused() -> None:
    def nested(depth: int) -> dict[str, Any]:
        """The mission object at level 0, then lists down to level ``depth``."""
        node: list[Any] = []
        for _ in range(depth - 1):
            node = [node]
        return {"a": node}

    _check_depth(nested(4), 5)
    with pytest.raises(MissionInvalid, match="nested more than 5 levels") as got:
        _check_depth(nested(5), 5)
    assert got.value.path == "mission.a[0][0][0][0]"
