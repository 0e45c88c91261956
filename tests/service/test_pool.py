"""The service with a warm pool: missions take pooled sandboxes; health and metrics show it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEFAULT_IMAGE
from tests.service.conftest import StartJudge
from tests.service.support import Api, Receiver, hello_world, poll

pytestmark = pytest.mark.docker


async def health(api: Api) -> dict[str, Any]:
    async with api.session.get(f"{api.url}/healthz") as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def metric_samples(api: Api) -> dict[str, str]:
    async with api.session.get(f"{api.url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


async def test_missions_take_warm_sandboxes(start_judge: StartJudge, receiver: Receiver) -> None:
    _, api = await start_judge(pool=f"{DEFAULT_IMAGE}=1", pool_max=1)
    ready = await poll(
        lambda: health(api), lambda h: h["pool"]["images"][DEFAULT_IMAGE]["ready"] == 1, 60
    )
    assert ready["pool"]["hits"] == 0
    for n in (1, 2):
        await poll(
            lambda: health(api), lambda h: h["pool"]["images"][DEFAULT_IMAGE]["ready"] == 1, 60
        )
        status, body, _ = await api.submit(hello_world(receiver.url))
        assert status == 200, body
        await receiver.next(timeout=30)
        samples = await metric_samples(api)
        assert float(samples["judge_pool_hits_total"]) == n
        assert float(samples["judge_pool_misses_total"]) == 0
        assert float(samples[f'judge_pool_target{{image="{DEFAULT_IMAGE}"}}']) == 1
    status, body = await api.get(2)
    assert body["state"] == "done"
    # The fixture checks that nothing (pooled or used) is left once the judge stopped.
