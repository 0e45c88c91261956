"""The mission API end to end: a real port, a real callback receiver, the real engine."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from typing import Any

import pytest

from tests.seed000 import seed_echo
from tests.service.conftest import StartJudge
from tests.service.support import (
    BOB,
    Receiver,
    all_removed,
    hello_world,
    owned,
    poll,
    run,
    sleeper,
    threads_reading_sandboxes,
)

pytestmark = pytest.mark.docker

FINAL = ("delivered", "failed")  # final callback states
HELLO_B64 = base64.b64encode(b"hello world\n").decode()


def first_execute(result: dict[str, Any]) -> dict[str, Any]:
    executes: list[dict[str, Any]] = result["prepare"]["execute"]
    assert len(executes) == 1
    return executes[0]


async def test_hello_world_arrives_form_encoded_as_in_the_seed(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    _, api = await start_judge()
    t0 = time.perf_counter()
    status, body, _ = await api.submit(hello_world(receiver.url))
    acked = time.perf_counter()
    assert status == 200, body
    assert body == {"msg": {"id": 1, "payload": {}}}

    got = await receiver.next()
    latency = got.at - t0
    print(
        f"\nhello world: POST acknowledged in {(acked - t0) * 1000:.1f} ms, "
        f"callback after {latency * 1000:.1f} ms"
    )
    assert got.path == "/callback"
    assert "webhook-signature" not in got.headers  # no secret configured
    fields = got.form()
    assert [k for k, _ in fields] == ["id", "mission", "mission_result"]
    values = dict(fields)
    assert values["id"] == "1"
    assert json.loads(values["mission"]) == seed_echo(receiver.url)
    result = json.loads(values["mission_result"])
    assert result["final"] == {"execute": [], "file": {}}
    assert result["task"] == []
    assert result["prepare"]["file"] == {}
    execute = first_execute(result)
    assert execute["name"] == ""
    assert execute["record"] == {"stdout": HELLO_B64, "stderr": ""}
    assert execute["record"]["stdout"] == "aGVsbG8gd29ybGQK"
    meta = execute["meta"]
    assert meta["status"] == ""
    assert meta["message"] == ""
    assert {"cpu-time-usage", "memory-usage", "real-time-usage"} <= meta.keys()
    assert 0 < meta["memory-usage"] < 64 * 1024
    assert latency < 10
    assert receiver.queue.empty()


@pytest.mark.parametrize("how", ["json", "json-string", "multipart", "bearer", "no-slash"])
async def test_every_way_of_submitting_works_and_payload_comes_back(
    start_judge: StartJudge, receiver: Receiver, how: str
) -> None:
    _, api = await start_judge()
    payload = {"user": "ann", "n": 3, "ok": True, "none": None}
    mission: Any = hello_world(receiver.url, payload=payload)
    if how == "json-string":
        how, mission = "json", json.dumps(mission)
    if how == "no-slash":
        async with api.session.post(
            f"{api.url}/api/missions",
            data={"mission": json.dumps(mission)},
            headers={"Authorization": f"Bearer {BOB}"},
        ) as resp:
            status, body = resp.status, await resp.json()
    else:
        status, body, _ = await api.submit(mission, how=how)
    assert status == 200, body
    assert body == {"msg": {"id": 1, "payload": payload}}
    fields = (await receiver.next()).form()
    assert [k for k, _ in fields] == ["id", "mission", "mission_result", "user", "n", "ok", "none"]
    values = dict(fields)
    assert (values["user"], values["n"], values["ok"], values["none"]) == ("ann", "3", "true", "")
    assert json.loads(values["mission"])["return"]["payload"] == payload
    assert first_execute(json.loads(values["mission_result"]))["record"]["stdout"] == HELLO_B64


async def test_json_callback_is_signed(start_judge: StartJudge, receiver: Receiver) -> None:
    secret = "correct horse battery staple"
    _, api = await start_judge(callback_secret=secret)
    status, body, _ = await api.submit(hello_world(receiver.url, payload={"k": "v"}, format="json"))
    assert status == 200, body
    got = await receiver.next()
    msg_id, stamp = got.headers["webhook-id"], got.headers["webhook-timestamp"]
    signed = f"{msg_id}.{stamp}.".encode() + got.body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    assert got.headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert abs(time.time() - int(stamp)) < 60
    assert len(msg_id) >= 16
    assert "X-Judge-Signature" not in got.headers
    doc = got.json()
    assert set(doc) == {"id", "mission", "mission_result", "k"}
    assert doc["id"] == 1
    assert doc["k"] == "v"
    ret = doc["mission"]["return"]
    assert ret == {"url": receiver.url, "payload": {"k": "v"}, "format": "json"}
    assert first_execute(doc["mission_result"])["record"]["stdout"] == HELLO_B64


async def test_callback_retried_until_the_receiver_takes_it(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    _, api = await start_judge(callback_secret="s")
    receiver.responses = [(500, {}), (500, {})]
    status, body, _ = await api.submit(hello_world(receiver.url))
    assert status == 200, body
    tries = [await receiver.next() for _ in range(3)]
    assert len({t.body for t in tries}) == 1  # the same callback each time
    assert len({t.headers["webhook-id"] for t in tries}) == 1  # one delivery id
    assert all(b.at > a.at for a, b in itertools.pairwise(tries))
    state = await api.wait_for(1, lambda b: b["callback"]["state"] in FINAL)
    assert state["callback"] == {"state": "delivered", "attempts": 3, "error": ""}
    assert receiver.queue.empty()


async def test_retry_after_is_honoured(start_judge: StartJudge, receiver: Receiver) -> None:
    _, api = await start_judge(callback_max_wait_s=5)
    receiver.responses = [(503, {"Retry-After": "1"}), (429, {"Retry-After": "1"})]
    await api.submit(hello_world(receiver.url))
    tries = [await receiver.next() for _ in range(3)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert all(1.0 <= g < 3.0 for g in gaps), gaps  # not the 0.05 s backoff


async def test_redirects_are_not_followed(start_judge: StartJudge, receiver: Receiver) -> None:
    _, api = await start_judge()
    receiver.responses = [(307, {"Location": f"{receiver.url}/elsewhere"})]
    await api.submit(hello_world(receiver.url))
    assert (await receiver.next()).path == "/callback"
    state = await api.wait_for(1, lambda b: b["callback"]["state"] in FINAL)
    assert state["callback"]["state"] == "failed"
    assert "307" in state["callback"]["error"]
    assert receiver.queue.empty()  # nothing went to /callback/elsewhere


async def test_get_and_cancel_belong_to_the_submitting_token(
    start_judge: StartJudge, receiver: Receiver, owner: str
) -> None:
    _, api = await start_judge(max_running=1)
    assert (await api.submit(sleeper(receiver.url, 30)))[1]["msg"]["id"] == 1
    assert (await api.submit(hello_world(receiver.url)))[1]["msg"]["id"] == 2
    running = await api.wait_for(1, lambda b: b["state"] == "running")
    assert running["mission_result"] is None
    assert running["runs"] == 1
    status, queued = await api.get(2)
    assert status == 200
    assert queued["state"] == "queued"
    assert queued["mission"]["prepare"]["execute"][0]["command"] == ["echo", "hello world"]

    # Another token sees nothing and can cancel nothing.
    for call in (api.get(1, token=BOB), api.delete(1, token=BOB)):
        status, body = await call
        assert status == 404
        assert body["error"]["code"] == "not_found", body

    # Cancelling a queued mission ends it at once, with a complete result and a callback.
    status, body = await api.delete(2)
    assert (status, body) == (200, {"id": 2, "state": "cancelled"})
    got = dict((await receiver.next(timeout=10)).form())
    assert got["id"] == "2"
    meta = first_execute(json.loads(got["mission_result"]))["meta"]
    assert (meta["status"], meta["message"]) == ("SE", "cancelled")

    # Cancelling a running one kills its sandbox; the callback still goes out.
    t0 = time.perf_counter()
    status, body = await api.delete(1)
    assert (status, body) == (202, {"id": 1, "state": "cancelling"})
    got = dict((await receiver.next(timeout=20)).form())
    print(f"\ncancel of a running mission: callback after {time.perf_counter() - t0:.2f} s")
    assert got["id"] == "1"
    meta = first_execute(json.loads(got["mission_result"]))["meta"]
    assert meta["status"] == "SE"
    assert "cancelled" in meta["message"]
    await all_removed(owner)  # in the background, off the callback's path
    final = await api.wait_for(1, lambda b: b["callback"]["state"] == "delivered")
    assert final["state"] == "cancelled"
    status, body = await api.delete(1)  # again: nothing to do
    assert (status, body) == (200, {"id": 1, "state": "cancelled"})


async def test_full_queue_says_429_and_stores_nothing(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    judge, api = await start_judge(max_queued=0)
    status, body, headers = await api.submit(hello_world(receiver.url))
    assert status == 429, body
    assert body["error"]["code"] == "queue_full"
    assert int(headers["Retry-After"]) >= 1
    assert await judge.app_store_counts() == {}


async def test_small_queue_fills_up(start_judge: StartJudge, receiver: Receiver) -> None:
    judge, api = await start_judge(max_running=1, max_queued=1)
    assert (await api.submit(sleeper(receiver.url, 30)))[0] == 200
    await api.wait_for(1, lambda b: b["state"] == "running")
    assert (await api.submit(hello_world(receiver.url)))[0] == 200  # waits in the queue
    status, body, headers = await api.submit(hello_world(receiver.url))
    assert status == 429, body
    assert "Retry-After" in headers
    assert await judge.app_store_counts() == {"running": 1, "queued": 1}
    # Cancelling the queued one makes room again.
    assert (await api.delete(2))[1]["state"] == "cancelled"
    assert (await api.submit(hello_world(receiver.url)))[1]["msg"]["id"] == 3
    await api.delete(1)
    ids = sorted([dict((await receiver.next()).form())["id"] for _ in range(3)])
    assert ids == ["1", "2", "3"]


async def test_images_are_checked_at_submission(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    judge, api = await start_judge()
    cases = {
        "judge/no-such-image:nope": "is not installed",
        "judge/rootfs:bookworm": "not a judge image",  # exists, but has no supervisor
    }
    for image, message in cases.items():
        status, body, _ = await api.submit({**hello_world(receiver.url), "image": image})
        assert status == 400, body
        assert body["error"]["path"] == "mission.image"
        assert message in body["error"]["message"]
    assert await judge.app_store_counts() == {}


async def test_missing_default_image_is_503_and_unhealthy(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    judge, api = await start_judge(default_image="judge/no-such-image:nope")
    status, body, headers = await api.submit(hello_world(receiver.url))
    assert status == 503, body
    assert "Retry-After" in headers
    async with api.session.get(f"{api.url}/healthz") as resp:
        health = await resp.json()
        assert resp.status == 503
    assert health["checks"]["default_image"]["ok"] is False
    assert health["checks"]["engine"]["ok"] is True
    assert await judge.app_store_counts() == {}


async def test_healthz_and_metrics(start_judge: StartJudge, receiver: Receiver) -> None:
    _, api = await start_judge()
    async with api.session.get(f"{api.url}/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["ok"] is True
    await api.submit(hello_world(receiver.url))
    await receiver.next()
    await api.wait_for(1, lambda b: b["callback"]["state"] == "delivered")
    async with api.session.get(f"{api.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(samples['judge_missions{state="done"}']) == 1
    assert float(samples['judge_callbacks{state="delivered"}']) == 1
    assert float(samples["judge_callbacks_delivered_total"]) == 1
    assert float(samples["judge_callback_attempts_total"]) == 1
    assert float(samples["judge_queue_depth"]) == 0
    assert float(samples["judge_running"]) == 0
    assert float(samples['judge_phase_seconds_sum{phase="create"}']) > 0
    assert 0 < float(samples["judge_turnaround_seconds_sum"]) < 10
    # The process's own metrics, from prometheus_client's collectors.
    assert float(samples["process_cpu_seconds_total"]) > 0
    assert float(samples["process_resident_memory_bytes"]) > 0
    assert any(key.startswith("python_info{") for key in samples)
    assert any(key.startswith("python_gc_collections_total{") for key in samples)


async def test_many_missions_run_concurrently_within_the_bound(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    judge, api = await start_judge(max_running=3)
    n = 9
    t0 = time.perf_counter()
    ids = [(await api.submit(sleeper(receiver.url, 1)))[1]["msg"]["id"] for _ in range(n)]
    # Count the missions running at once (one query of the store: a snapshot) until all are
    # done: never more than the bound, and the bound reached (they do run in parallel).
    most = 0
    while (counts := await judge.app_store_counts()).get("done", 0) < n:
        assert counts.get("running", 0) <= 3, counts
        most = max(most, counts.get("running", 0))
        await asyncio.sleep(0.02)  # a polling interval, not a synchronisation
    got = [await receiver.next(timeout=60) for _ in range(n)]
    print(f"\n{n} one-second missions on 3 workers: {time.perf_counter() - t0:.2f} s")
    assert sorted(int(dict(g.form())["id"]) for g in got) == ids
    assert most == 3
    assert await judge.app_store_counts() == {"done": n}


async def test_cancel_kills_an_executing_sandbox(
    start_judge: StartJudge, receiver: Receiver, owner: str
) -> None:
    _, api = await start_judge()
    mission = sleeper(receiver.url, 30)
    mission["prepare"]["file"] = {"input.txt": f"{receiver.url}/input"}
    status, body, _ = await api.submit(mission)
    assert status == 200, body
    # The download comes from the main sandbox's mission, after that sandbox was started.
    fetched = await receiver.next()
    assert fetched.path == "/callback/input"
    containers, _ = await owned(owner)
    assert len(containers) == 1

    async def processes() -> str:
        rc, out, err = await run("docker", "top", containers[0])
        assert rc == 0, err
        return out

    await poll(processes, lambda out: "sleep 30" in out, timeout=20)  # the execute runs
    t0 = time.perf_counter()
    assert (await api.delete(1))[1]["state"] == "cancelling"
    # Well before the sleep's 30 s: the sandbox was killed, not waited for.
    got = await receiver.next(timeout=20)
    print(f"\ncancel of an executing sandbox: callback after {time.perf_counter() - t0:.2f} s")
    result = json.loads(dict(got.form())["mission_result"])
    assert result["prepare"]["file"]["input.txt"]["status"] == 200
    meta = first_execute(result)["meta"]
    assert meta["status"] == "SE"
    assert "cancelled" in meta["message"]
    await all_removed(owner)  # killed, and removed in the background
    await poll(lambda: asyncio.sleep(0, threads_reading_sandboxes()), lambda t: not t, 5)


async def test_private_callback_addresses_can_be_refused(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    judge, api = await start_judge(block_private_urls=True)
    # An address known now is refused now.
    status, body, _ = await api.submit(hello_world(receiver.url))
    assert status == 400, body
    assert body["error"]["path"] == "mission.return.url"
    assert await judge.app_store_counts() == {}
    # A name is checked when it resolves: the mission runs, the callback is refused for good.
    url = receiver.url.replace("127.0.0.1", "localhost")
    assert (await api.submit(hello_world(url)))[0] == 200
    state = await api.wait_for(1, lambda b: b["callback"]["state"] in FINAL, timeout=30)
    assert state["callback"]["state"] == "failed"
    assert state["callback"]["attempts"] == 1
    assert "not allowed" in state["callback"]["error"]
    assert receiver.queue.empty()
