"""``GET /api/missions/{id}/events``: Server-Sent Events of a real judge's missions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from service.api.events import EventHub
from service.store import MissionRow
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, BOB, Api, poll

pytestmark = pytest.mark.docker


def two_steps(seconds: float = 0) -> dict[str, Any]:
    """Two executes in prepare; the first one fails (RE), the second sleeps then succeeds."""
    return {
        "prepare": {
            "execute": [
                {"name": "fails", "command": ["sh", "-c", "exit 3"]},
                {"name": "sleeps", "command": ["sh", "-c", f"sleep {seconds}"]},
            ]
        }
    }


async def events(
    api: Api, mission_id: int, token: str = ALICE, last_event_id: str | None = None
) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    """``(id, type, data)`` of each event until the server ends the stream."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    async with api.session.get(
        f"{api.url}/api/missions/{mission_id}/events", headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        event_id, kind, data = "", "message", []
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    yield event_id, kind, json.loads("\n".join(data))
                kind, data = "message", []
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = value
            elif field == "event":
                kind = value
            elif field == "data":
                data.append(value)


async def collect(api: Api, mission_id: int, **kw: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [e async for e in events(api, mission_id, **kw)]


async def test_a_mission_streams_states_executes_and_done(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    status, body, _ = await api.submit(two_steps(0.5))
    assert status == 200, body
    got = await asyncio.wait_for(collect(api, 1), 60)
    kinds = [k for _, k, _ in got]
    assert kinds[-1] == "done"
    states = [d["state"] for _, k, d in got if k == "state"]
    assert states[-2:] == ["running", "done"]
    executes = [d for _, k, d in got if k == "execute"]
    assert [(e["stage"], e["task"], e["index"], e["name"]) for e in executes] == [
        ("prepare", None, 0, "fails"),
        ("prepare", None, 1, "sleeps"),
    ]
    assert [(e["n"], e["executes"]) for e in executes] == [(1, 2), (2, 2)]
    assert [e["meta"]["status"] for e in executes] == ["RE", ""]
    done = got[-1][2]
    _, polled = await api.get(1)
    assert done["state"] == "done"
    assert done["mission_result"] == polled["mission_result"]
    ids = [i for i, _, _ in got]
    assert len(set(ids)) == len(ids)
    assert all(ids)

    # Resuming after the first execute gives exactly what followed it.
    first_execute = next(i for i, k, _ in got if k == "execute")
    resumed = await asyncio.wait_for(collect(api, 1, last_event_id=first_execute), 30)
    assert resumed == got[got.index(next(e for e in got if e[0] == first_execute)) + 1 :]
    # An unknown id replays the whole log: a client never misses the result.
    replay = await asyncio.wait_for(collect(api, 1, last_event_id="nonsense-7"), 30)
    assert replay == got


async def test_a_mission_from_the_database_is_replayed_from_its_result(
    start_judge: StartJudge,
) -> None:
    judge, api = await start_judge()
    await api.submit(two_steps())
    await api.wait_for(1, lambda b: b["state"] == "done")
    await judge.stop()
    _, api = await start_judge(data_dir=judge.settings.data_dir)  # a new process's view
    got = await asyncio.wait_for(collect(api, 1), 30)
    assert [k for _, k, _ in got] == ["state", "execute", "execute", "done"]
    assert got[0][2] == {"id": 1, "state": "done"}
    assert [d["meta"]["status"] for _, k, d in got if k == "execute"] == ["RE", ""]
    resumed = await asyncio.wait_for(collect(api, 1, last_event_id=got[1][0]), 30)
    assert resumed == got[2:]


async def test_another_tokens_mission_is_not_found(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    await api.submit(two_steps())
    async with api.session.get(
        f"{api.url}/api/missions/1/events", headers={"Authorization": f"Bearer {BOB}"}
    ) as resp:
        assert resp.status == 404
    async with api.session.get(f"{api.url}/api/missions/1/events") as resp:
        assert resp.status == 401


async def test_stopping_the_server_ends_open_streams(start_judge: StartJudge) -> None:
    judge, api = await start_judge(shutdown_grace_s=0.5)
    await api.submit(two_steps(60))
    got: list[tuple[str, str, dict[str, Any]]] = []

    async def follow() -> None:
        try:
            async for event in events(api, 1):
                got.append(event)
        except aiohttp.ClientPayloadError:
            pass  # the server closed the stream mid-chunk: also an end

    follower = asyncio.create_task(follow())
    await api.wait_for(1, lambda b: b["state"] == "running")
    # The stream is open once it delivered the mission running (the log replays it).
    await poll(
        lambda: asyncio.sleep(0, [d.get("state") for _, k, d in got if k == "state"]),
        lambda states: "running" in states,
        30,
    )
    await asyncio.wait_for(judge.stop(), 30)
    await asyncio.wait_for(follower, 10)
    # It ended without a "done" that never happened. (all(...) alone also passed when no
    # event had arrived: the stream is now known to have been open.)
    assert "done" not in [k for _, k, _ in got]


def row(
    mission_id: int, state: str, result: dict[str, Any] | None, normalised: Any = None
) -> MissionRow:
    fields: dict[str, Any] = dict.fromkeys(MissionRow.__dataclass_fields__)
    fields.update(id=mission_id, state=state, result=result, error="", normalised=normalised)
    return MissionRow(**fields)


def test_joining_a_running_mission_knows_how_many_executes_it_has() -> None:
    hub = EventHub()
    one = {"execute": [{"command": ["true"]}]}
    normalised = {"prepare": one, "tasks": {"task": [one, one], "execute": []}, "final": {}}
    log = hub.log_for(row(5, "running", None, normalised))
    assert log.events[0].data == {"id": 5, "state": "running", "executes": 3}
    entry = {"name": "", "meta": {"status": ""}, "record": {}}
    hub.publish(5, "execute", {"stage": "task", "task": 1, "index": 0, "entry": entry})
    assert (log.events[-1].data["n"], log.events[-1].data["executes"]) == (1, 3)


def test_finished_logs_are_forgotten_beyond_the_limit() -> None:
    hub = EventHub(keep_finished=2)
    for mission_id in (1, 2, 3):
        hub.publish(mission_id, "state", {"state": "queued"})
        hub.publish(mission_id, "end", {"state": "done", "result": {}, "error": ""})
    assert hub.current(1) is None
    assert hub.current(2) is not None
    assert hub.current(3) is not None
    # Mission 1 is then rebuilt from its row, under another epoch.
    log = hub.log_for(row(1, "done", {"prepare": {"execute": []}}))
    assert [e.type for e in log.events] == ["state", "done"]


def test_a_finished_mission_run_again_is_live_and_not_forgotten() -> None:
    hub = EventHub(keep_finished=1)
    hub.publish(1, "state", {"state": "queued"})
    hub.publish(1, "end", {"state": "done", "result": {}, "error": ""})
    hub.publish(1, "state", {"state": "queued"})  # run again (after a restart): the old log goes
    assert hub.current(1) is None
    hub.publish(1, "state", {"state": "running", "executes": 1})  # and its run starts a fresh one
    for mission_id in (2, 3):
        hub.publish(mission_id, "state", {"state": "queued"})
        hub.publish(mission_id, "end", {"state": "done", "result": {}, "error": ""})
    live = hub.current(1)
    assert live is not None
    assert not live.finished
    assert hub.current(2) is None
    assert hub.current(3) is not None


def test_a_queued_mission_has_no_log_until_a_stream_asks_and_then_the_same_events() -> None:
    hub = EventHub()
    for mission_id in range(1, 1001):
        hub.publish(mission_id, "state", {"state": "queued"})
    assert all(hub.current(m) is None for m in range(1, 1001))  # a queue holds no logs
    log = hub.log_for(row(7, "queued", None, {}))  # a stream asks while it waits
    hub.publish(7, "state", {"state": "running", "executes": 2})
    assert [(e.id.rsplit("-", 1)[1], e.type, e.data) for e in log.events] == [
        ("1", "state", {"id": 7, "state": "queued"}),
        ("2", "state", {"id": 7, "state": "running", "executes": 2}),
    ]
    hub.publish(8, "state", {"state": "running", "executes": 1})  # nobody asked: starts running
    started = hub.current(8)
    assert started is not None
    assert [e.data["state"] for e in started.events] == ["running"]
