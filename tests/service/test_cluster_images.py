"""On a shared PostgreSQL queue a node claims only missions whose image it has.

Both nodes of a test share this machine's engine, so a node that lacks an image is made by
narrowing what its registry says it has (``app[LANGUAGES].images``, which its claims carry);
everything else is the real path: missions stored in PostgreSQL, the node's shared queue and
workers, sandboxes on the engine.
"""

from __future__ import annotations

import pytest

from orchestrator.mission import normalise, parse_mission
from service.keys import LANGUAGES, STORE
from service.store import MissionRow
from tests.service.conftest import StartJudge
from tests.service.support import poll

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


async def test_a_node_leaves_missions_of_images_it_lacks_to_others(
    start_judge: StartJudge, pg_url: str
) -> None:
    judge, _ = await start_judge(database_url=pg_url, languages_refresh_s=3600)
    store = judge.app[STORE]
    languages = judge.app[LANGUAGES]
    assert languages.images is not None
    assert {"judge/python3", "judge/default"} <= languages.images
    everything = languages.images
    languages.images = everything - {"judge/python3"}  # as if its engine had no judge/python3

    async def queue(image: str | None) -> int:
        doc = {
            "prepare": {"execute": [{"command": ["echo", "ran"], "stdout": "out.txt"}]},
            **({"image": image} if image else {}),
        }
        mission = parse_mission(doc)
        return await store.missions.insert_mission("t" * 64, doc, normalise(mission))

    async def row(mission_id: int) -> MissionRow:
        got = await store.missions.get_mission(mission_id)
        assert got is not None
        return got

    # The older mission first: a node that claimed in id order regardless of images takes it.
    python_id = await queue("judge/python3")
    default_id = await queue(None)
    done = await poll(lambda: row(default_id), lambda r: r.state == "done", 60)
    assert done.result is not None
    assert (await row(python_id)).state == "queued"

    languages.images = everything  # the image arrives: the node takes the mission
    ran = await poll(lambda: row(python_id), lambda r: r.state == "done", 60)
    assert ran.runs == 1
