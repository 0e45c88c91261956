"""A submission's inputs live with its mission in the store: a restart loses none, and the one
that was running is run again from the start."""

from __future__ import annotations

from typing import Any

import pytest

from tests.judge0.conftest import Judge0Http

pytestmark = pytest.mark.docker


async def test_submissions_survive_a_restart(start_judge: Any, session: Any) -> None:
    first, _ = await start_judge(max_running=1, shutdown_grace_s=0.2)
    api = Judge0Http(session, first.url + "/judge0")
    slow = "import time, sys\ntime.sleep(2)\nprint(sys.stdin.read().upper())"
    tokens = []
    for word in ("running", "queued"):
        status, body, _ = await api.call(
            "POST", "/submissions", json={"source_code": slow, "language_id": 71, "stdin": word}
        )
        assert status == 201
        tokens.append(body["token"])
    await first.stop()

    second, _ = await start_judge()
    api = Judge0Http(session, second.url + "/judge0")
    done = [await api.wait_done(token) for token in tokens]
    assert [d["status"]["id"] for d in done] == [3, 3]
    assert [d["stdout"] for d in done] == ["RUNNING\n", "QUEUED\n"]
