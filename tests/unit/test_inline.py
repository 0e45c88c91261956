"""Which stored missions and callbacks are small enough for the event loop (pure logic)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from service.pipeline.inline import INLINE_BYTES, callback_small, stored_small
from service.store.records import mission_row

EXECUTE = {"command": ["echo", "hello world"], "stdout": "output.txt"}


def stored(mission: dict[str, Any]) -> Any:
    """A mission row as the store hands it back, with ``mission`` stored as JSON text."""
    text = json.dumps(mission)
    columns = dict.fromkeys(
        ["id", "token_hash", "state", "error", "created_at", "updated_at", "runs"], 0
    )
    columns.update(
        mission=text,
        normalised=text,
        result=None,
        delivery_id="d",
        callback_state="none",
        callback_attempts=0,
        callback_error="",
        kind="mission",
    )
    return mission_row(columns)


def test_a_hello_world_is_small() -> None:
    row = stored({"prepare": {"execute": [EXECUTE]}})
    assert 0 < row.mission_bytes < 100
    assert stored_small(row)


def test_what_the_bounds_refuse() -> None:
    many = {"prepare": {"execute": [EXECUTE] * 17}}
    tasks = {"prepare": {"execute": [EXECUTE]}, "tasks": {"task": [{}], "execute": [EXECUTE]}}
    files = {"prepare": {"file": {f"f{i}": "data:,x" for i in range(17)}}}
    large = {"prepare": {"execute": [{"command": ["echo", "x" * INLINE_BYTES]}]}}
    for mission in (many, tasks, files, large):
        assert not stored_small(stored(mission)), mission
    # A row whose document's size is not known is not small.
    row = stored({"prepare": {"execute": [EXECUTE]}})
    assert not stored_small(dataclasses.replace(row, mission_bytes=0))


def test_a_callback_recording_much_output_is_not_small() -> None:
    row = stored({"prepare": {"execute": [EXECUTE, EXECUTE]}})
    quiet = {"prepare": {"execute": [{"record": {"stdout": "aGk=", "stderr": ""}}] * 2}}
    loud = {"prepare": {"execute": [{"record": {"stdout": "x" * (INLINE_BYTES // 2 + 1)}}] * 2}}
    assert callback_small(row, quiet)
    assert not callback_small(row, loud)
