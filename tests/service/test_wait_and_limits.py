"""Poll-only missions, ``?wait=S`` and per-token rate limits, against a real judge."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.http.ratelimit import RateLimiter
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, BOB, Receiver, hello_world, poll, sleeper


def no_return(mission: dict) -> dict:
    return {k: v for k, v in mission.items() if k != "return"}


@pytest.mark.docker
async def test_a_mission_without_return_is_polled_and_has_no_callback(
    start_judge: StartJudge,
) -> None:
    _, api = await start_judge()
    status, body, _ = await api.submit(no_return(hello_world("http://unused.invalid/")))
    assert (status, body) == (200, {"msg": {"id": 1, "payload": {}}})
    done = await api.wait_for(1, lambda b: b["state"] == "done")
    assert "return" not in done["mission"]
    assert done["callback"] == {"state": "none", "attempts": 0, "error": ""}
    assert done["mission_result"]["prepare"]["execute"][0]["meta"]["status"] == ""


@pytest.mark.docker
async def test_wait_answers_the_finished_mission_and_the_callback_still_goes(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    _, api = await start_judge()
    mission = hello_world(receiver.url, payload={"user": "alice"})
    status, body, _ = await api.submit(mission, params={"wait": "60"})
    assert status == 200, body
    assert body["msg"] == {"id": 1, "payload": {"user": "alice"}}
    assert body["state"] == "done"
    assert body["id"] == 1
    assert body["mission_result"]["prepare"]["execute"][0]["record"]["stdout"] == (
        "aGVsbG8gd29ybGQK"
    )
    _, polled = await api.get(1)
    assert {k: v for k, v in body.items() if k not in ("msg", "callback")} == {
        k: v for k, v in polled.items() if k != "callback"
    }
    got = await receiver.next()
    assert ("id", "1") in got.form()


@pytest.mark.docker
async def test_wait_shorter_than_the_mission_is_202_with_msg(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    status, body, _ = await api.submit(no_return(sleeper("", 30)), params={"wait": "0.2"})
    assert (status, body) == (202, {"msg": {"id": 1, "payload": {}}})
    assert (await api.delete(1))[0] in (200, 202)
    await api.wait_for(1, lambda b: b["state"] == "cancelled")


@pytest.mark.parametrize("wait", ["61", "-1", "abc", "nan", "inf", ""])
async def test_a_bad_wait_is_refused_before_anything_is_stored(
    start_judge: StartJudge, wait: str
) -> None:
    judge, api = await start_judge()
    status, body, _ = await api.submit(hello_world("http://x.invalid/"), params={"wait": wait})
    assert status == 400
    assert (body["error"]["code"], body["error"]["path"]) == ("invalid_wait", "wait")
    assert await judge.app_store_counts() == {}


@pytest.mark.docker
async def test_rate_limit_per_token_with_headers(start_judge: StartJudge) -> None:
    _, api = await start_judge(rate_limit=2)
    mission = no_return(hello_world(""))
    remaining = []
    for _ in range(2):
        status, _, headers = await api.submit(mission)
        assert status == 200
        assert headers["RateLimit-Limit"] == "2"
        assert 1 <= int(headers["RateLimit-Reset"]) <= 60
        remaining.append(headers["RateLimit-Remaining"])
    assert remaining == ["1", "0"]
    status, body, headers = await api.submit(mission)
    assert status == 429
    assert body["error"]["code"] == "rate_limited"
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert headers["RateLimit-Remaining"] == "0"
    # Another token has its own budget.
    status, _, headers = await api.submit(mission, token=BOB)
    assert (status, headers["RateLimit-Remaining"]) == (200, "1")
    # Refusals are not counted; the stored missions are only the accepted ones.
    assert (await api.get(4, token=ALICE))[0] == 404


@pytest.mark.docker
async def test_no_rate_limit_headers_by_default(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    status, _, headers = await api.submit(no_return(hello_world("")))
    assert status == 200
    assert "RateLimit-Limit" not in headers


def test_the_window_resets_after_a_minute() -> None:
    now = [1000.0]
    limiter = RateLimiter(1, clock=lambda: now[0])
    assert limiter.take("a")["RateLimit-Remaining"] == "0"
    now[0] += 59.5
    with pytest.raises(Exception, match="per minute") as refused:
        limiter.take("a")
    assert refused.value.headers["Retry-After"] == "1"  # type: ignore[attr-defined]
    now[0] += 0.5
    assert limiter.take("a")["RateLimit-Remaining"] == "0"


def test_off_means_no_headers_and_no_limit() -> None:
    limiter = RateLimiter(0)
    assert all(limiter.take("a") == {} for _ in range(1000))


@pytest.mark.docker
async def test_a_waiting_submission_answers_202_when_the_server_stops(
    start_judge: StartJudge,
) -> None:
    judge, api = await start_judge(shutdown_grace_s=0.5)
    waiting = asyncio.create_task(api.submit(no_return(sleeper("", 60)), params={"wait": "60"}))
    # The submission is stored in its own task: 404 until then.
    await poll(lambda: api.get(1), lambda r: r[0] == 200 and r[1]["state"] == "running", 30)
    t0 = time.monotonic()
    stopping = asyncio.create_task(judge.stop())
    status, body, _ = await asyncio.wait_for(waiting, 30)
    await asyncio.wait_for(stopping, 30)
    assert (status, body) == (202, {"msg": {"id": 1, "payload": {}}})
    assert time.monotonic() - t0 < 20  # not held for the whole wait
