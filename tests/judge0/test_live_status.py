"""A submission's status while its mission waits, runs, or ended without its outcome stored."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from service.frontdoors.judge0 import wire
from service.frontdoors.judge0.repo import Judge0Repo, SubmissionRow
from service.frontdoors.judge0.request import Judge0Config
from service.frontdoors.judge0.submissions import LOST, LOST_AFTER_S, Submissions
from service.pipeline.compilecache import CompileCache
from service.store import MissionRow
from service.store.sqlite import SqliteStore
from tests.judge0.conftest import judge0_sql


def mission(state: str, updated_at: float) -> MissionRow:
    return MissionRow(
        id=7,
        token_hash="alice",
        state=state,
        mission={},
        normalised={},
        result=None,
        error="",
        created_at=0.0,
        updated_at=updated_at,
        runs=1,
        delivery_id="d",
        callback_state="",
        callback_attempts=0,
        callback_error="",
        kind="judge0",
    )


async def test_status_follows_the_mission_and_a_lost_outcome_ends_the_submission(
    tmp_path: Path,
) -> None:
    store = await SqliteStore.open(tmp_path / "db.sqlite")
    current: list[MissionRow] = []

    async def state(_: int) -> Any:
        return current[0]

    try:
        repo = Judge0Repo(await judge0_sql(store))
        subs = Submissions(repo, CompileCache(), Judge0Config, dict, state)
        row = SubmissionRow(
            token="t",
            token_hash="alice",
            mission_id=7,
            batch="",
            created_at=0.0,
            finished_at=None,
            language_id=71,
            params={},
            source_code=b"x",
            stdin=None,
            expected_output=None,
            additional_files=None,
            status_id=1,
            outcome=None,
            stdout=None,
            stderr=None,
            compile_output=None,
        )
        await repo.insert(row)
        current[:] = [mission("queued", time.time())]
        assert await subs.live_status(row) == wire.IN_QUEUE
        current[:] = [mission("running", time.time())]
        assert await subs.live_status(row) == wire.PROCESSING
        current[:] = [mission("done", time.time())]  # its outcome is being stored
        assert await subs.live_status(row) == wire.PROCESSING
        current[:] = [mission("done", time.time() - LOST_AFTER_S - 1)]  # its node died
        assert await subs.live_status(row) == wire.INTERNAL_ERROR
        stored = await repo.get("t")
        assert stored is not None
        assert stored.outcome is not None
        assert stored.outcome["message"] == LOST
    finally:
        await store.close()
