"""A stored submission rendered as Judge0 answers it, and its callback bodies (no engine)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.frontdoors.judge0 import wire
from service.frontdoors.judge0.languages import Judge0Language
from service.frontdoors.judge0.repo import SubmissionRow
from service.frontdoors.judge0.submissions import batch_callback_body, callback_body, render

LANGS = {
    71: Judge0Language(
        71, "Python (3.11.2)", "judge/python3", "script.py", None, ("python3", "script.py")
    )
}


def row(**changes: Any) -> SubmissionRow:
    base: dict[str, Any] = dict(
        token="tok",
        token_hash="alice",
        mission_id=1,
        batch="",
        created_at=1712576571.856,
        finished_at=1712576572.5,
        language_id=71,
        params={
            "cpu_time_limit": 5.0,
            "memory_limit": 128000,
            "number_of_runs": 1,
            "callback_url": None,
        },
        source_code=b"print('hi')",
        stdin=None,
        expected_output=None,
        additional_files=None,
        status_id=3,
        outcome={
            "time": 0.0123,
            "wall_time": 0.05,
            "memory": 7000,
            "exit_code": 0,
            "exit_signal": None,
            "message": None,
        },
        stdout=b"hi\n",
        stderr=None,
        compile_output=None,
    )
    base.update(changes)
    return SubmissionRow(**base)


def test_default_fields_as_judge0_writes_them() -> None:
    doc = render(row(), 3, wire.DEFAULT_FIELDS, base64_encoded=False, languages=LANGS)
    assert doc == {
        "token": "tok",
        "time": "0.0123",
        "memory": 7000,
        "stdout": "hi\n",
        "stderr": None,
        "compile_output": None,
        "message": None,
        "status": {"id": 3, "description": "Accepted"},
    }


def test_every_field() -> None:
    doc = render(row(), 3, wire.AVAILABLE_FIELDS, base64_encoded=False, languages=LANGS)
    assert list(doc) == list(wire.AVAILABLE_FIELDS)
    assert doc["created_at"] == "2024-04-08T11:42:51.856Z"
    assert doc["cpu_time_limit"] == "5.0"
    assert doc["language"] == {"id": 71, "name": "Python (3.11.2)"}
    assert doc["status_id"] == 3


def test_message_is_base64_when_asked() -> None:
    failed = row(status_id=11, outcome={"message": "Exited with error status 1"})
    doc = render(failed, 11, ("message",), base64_encoded=True, languages=LANGS)
    assert wire.decode64(doc["message"]) == b"Exited with error status 1"


def test_only_the_fields_asked_must_be_utf8() -> None:
    binary = row(stdout=b"\xff")
    assert render(binary, 3, ("token",), base64_encoded=False, languages=LANGS) == {"token": "tok"}
    with pytest.raises(wire.NotUtf8):
        render(binary, 3, ("stdout",), base64_encoded=False, languages=LANGS)


def test_callback_bodies_are_base64_default_fields() -> None:
    body = json.loads(callback_body(row(), LANGS))
    assert list(body) == list(wire.DEFAULT_FIELDS)
    assert body["stdout"] == "aGkK\n"
    batch = json.loads(batch_callback_body([row(), row(token="t2")], LANGS))
    assert [s["token"] for s in batch["submissions"]] == ["tok", "t2"]
