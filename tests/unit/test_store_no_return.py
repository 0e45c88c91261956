"""A mission without ``return`` has callback state ``none`` whatever becomes of it."""

from __future__ import annotations

from pathlib import Path

from service.store import Database


def test_callback_state_of_missions_with_and_without_return(tmp_path: Path) -> None:
    db = Database(tmp_path / "judge.sqlite3")
    try:
        polled, called = (
            db.insert_mission("h", {}, {"prepare": {}}),
            db.insert_mission("h", {}, {"return": {"url": "http://x.invalid/"}}),
        )
        states = [db.get_mission(i).callback_state for i in (polled, called)]  # type: ignore[union-attr]
        assert states == ["none", "waiting"]
        for i in (polled, called):
            db.claim(i)
            db.finish(i, "done", {})
        states = [db.get_mission(i).callback_state for i in (polled, called)]  # type: ignore[union-attr]
        assert states == ["none", "pending"]
        assert db.pending_callbacks() == [called]

        failed = db.insert_mission("h", {}, {})
        db.fail(failed, "boom")
        row = db.get_mission(failed)
        assert row is not None
        assert (row.callback_state, row.callback_error) == ("none", "")
    finally:
        db.close()
