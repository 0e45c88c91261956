"""Large submissions are decoded and validated in worker processes, never holding the loop's GIL,
with the answers the loop itself would give (``service.pipeline.offload``).

The structural claim is checked in the server's own process: with the JSON decoder and the
mission validator made to fail here, a large submission is still decoded, validated and
answered (so that work ran elsewhere), while a small one is refused by them (so it ran here).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import aiohttp
import pytest

import service.api.prepare as prepare_module
import service.http.body as body_module
import service.pipeline.callbacks as callbacks_module
import service.pipeline.delivery as delivery_module
from orchestrator.mission import (
    MissionCaps,
    MissionInvalid,
    MissionTooLarge,
    normalise,
    parse_mission,
)
from orchestrator.mission.caps import DEFAULT_CAPS
from service.api.prepare import prepare_mission_head
from service.http.body import INLINE_BODY_BYTES, EncodedJson, _json_fields_encoded
from service.http.errors import ApiError
from service.keys import OFFLOAD
from service.pipeline.offload import Offload, worker_pid
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, Receiver

URL = "http://127.0.0.1:9/callback"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture
async def offload() -> AsyncIterator[Offload]:
    pool = Offload(2, ["service.http.body", "service.api.prepare"])
    await pool.start()
    try:
        yield pool
    finally:
        await pool.stop()


def spy_on_offload(offload: Offload, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions ``offload`` runs from now on, in order."""
    ran: list[str] = []
    run = offload.run

    async def spy(fn: Any, *args: Any) -> Any:
        ran.append(fn.__name__)
        return await run(fn, *args)

    monkeypatch.setattr(offload, "run", spy)
    return ran


def invalid_mission(executes: int) -> dict[str, Any]:
    """``executes`` executes, two of them wrong in different ways (every error is reported)."""
    execs: list[dict[str, Any]] = [{"command": ["true"]} for _ in range(executes)]
    execs[7] = {"command": ["true"], "memory_limit": "65536"}
    execs[-1] = {"command": []}
    return {"return": {"url": URL}, "prepare": {"execute": execs}}


async def test_work_runs_in_another_process_and_its_errors_come_back_whole(
    offload: Offload,
) -> None:
    assert await offload.run(worker_pid) != os.getpid()
    doc = invalid_mission(50)
    with pytest.raises(MissionInvalid) as here:
        parse_mission(doc)
    with pytest.raises(MissionInvalid) as there:
        await offload.run(prepare_mission_head, json.dumps(doc).encode(), DEFAULT_CAPS)
    assert type(there.value) is MissionInvalid
    assert (there.value.path, there.value.message) == (here.value.path, here.value.message)
    assert there.value.errors == here.value.errors
    assert len(here.value.errors) == 2
    with pytest.raises(MissionTooLarge) as too_large:
        await offload.run(
            prepare_mission_head, json.dumps(doc).encode(), MissionCaps(max_executes=3)
        )
    assert too_large.value.path == "mission.tasks"
    with pytest.raises(ApiError) as api_error:
        await offload.run(_json_fields_encoded, b"[1]")
    assert (api_error.value.status, api_error.value.code, api_error.value.path) == (
        400,
        "malformed",
        "body",
    )


async def test_the_head_and_echo_from_a_worker_are_those_made_here(offload: Offload) -> None:
    doc = {
        "return": {"url": URL, "payload": {"a": 1}},
        "prepare": {"execute": [{"command": ["echo", str(i)]} for i in range(300)]},
        "tasks": {
            "task": [{"macro": {"X": "1"}}, {"macro": {"X": "2"}}],
            "execute": [{"command": ["echo", "X"], "scope": {"enable": True}}],
            "parallel": 2,
        },
        "image": "judge/default",
        "tick": True,
    }
    head, normalised, stored = await offload.run(
        prepare_mission_head, EncodedJson(json.dumps(doc).encode()), DEFAULT_CAPS
    )
    mission = parse_mission(doc)
    assert normalised == normalise(mission)
    assert stored == doc
    assert head.tasks.parallel == 2
    assert head.image == "judge/default"
    assert head.tick
    assert head.return_ == mission.return_
    assert head.prepare.execute == []
    assert head.tasks.execute == []


async def test_a_worker_that_dies_fails_its_call_and_the_next_call_gets_new_workers(
    offload: Offload,
) -> None:
    with pytest.raises(BrokenProcessPool):
        await offload.run(_die)
    assert await offload.run(worker_pid) != os.getpid()


@pytest.mark.docker
async def test_a_large_submission_is_decoded_and_validated_outside_the_servers_process(
    start_judge: StartJudge, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge, api = await start_judge()
    bad = invalid_mission(2000)  # ~50 KiB: over INLINE_BODY_BYTES
    with pytest.raises(MissionInvalid) as expected:
        parse_mission(bad)
    pad = "x" * INLINE_BODY_BYTES
    good = {"return": {"url": URL, "payload": {"pad": pad}}, "prepare": {"execute": []}}
    echo = normalise(parse_mission(good))

    def not_here(*_: object, **__: object) -> Any:
        raise AssertionError("decoded or validated in the server's own process")

    # Workers are other processes: these patches reach only this one.
    monkeypatch.setattr(prepare_module, "parse_mission", not_here)
    monkeypatch.setattr(body_module, "_json_fields", not_here)
    ran = spy_on_offload(judge.app[OFFLOAD], monkeypatch)

    for how in ("json", "form"):
        status, body, _ = await api.submit(bad, how=how)
        assert status == 400, body
        assert body["error"]["path"] == expected.value.path
        assert body["error"]["errors"] == expected.value.errors
    assert ran == [
        "_json_fields_encoded",
        "prepare_mission_head",
        "_urlencoded_fields",
        "prepare_mission_head",
    ]

    status, body, _ = await api.submit(good, how="json")
    assert status == 200, body
    assert body["msg"]["payload"] == {"pad": pad}
    status, row = await api.get(body["msg"]["id"])
    assert status == 200
    assert row["mission"] == echo

    # A small body is decoded here (and so meets the patched decoder): the path differs.
    async with session.post(
        f"{api.url}/api/missions/",
        json={"token": ALICE, "mission": {"return": {"url": URL}}},
    ) as resp:
        assert resp.status == 500


@pytest.mark.docker
async def test_a_large_missions_callback_is_encoded_outside_the_servers_process(
    start_judge: StartJudge, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge, api = await start_judge()
    ran = spy_on_offload(judge.app[OFFLOAD], monkeypatch)

    # A small mission's body is encoded here, on a thread: no process hop.
    small = {"return": {"url": receiver.url}, "prepare": {"execute": [{"command": ["true"]}]}}
    status, body, _ = await api.submit(small)
    assert status == 200, body
    form = dict((await receiver.next(timeout=60)).form())
    assert len(json.loads(form["mission_result"])["prepare"]["execute"]) == 1
    assert ran == []

    def not_here(*_: object, **__: object) -> Any:
        raise AssertionError("encoded in the server's own process")

    # The worker is another process: this patch reaches only this one.
    monkeypatch.setattr(callbacks_module, "urlencode", not_here)
    n = delivery_module.LARGE_CALLBACK_ENTRIES + 1
    large = {
        "return": {"url": receiver.url, "payload": {"tag": "a b&c"}},
        "prepare": {"execute": [{"command": ["true"]}] * n},
    }
    status, body, _ = await api.submit(large)
    assert status == 200, body
    form = dict((await receiver.next(timeout=120)).form())
    assert ran == ["prepare_mission_head", "callback_body"]  # (a large submission, too)
    assert form["id"] == str(body["msg"]["id"])
    assert form["tag"] == "a b&c"
    executes = json.loads(form["mission_result"])["prepare"]["execute"]
    assert [e["meta"]["status"] for e in executes] == [""] * n
