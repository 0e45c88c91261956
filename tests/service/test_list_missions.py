"""GET /api/missions: the caller's own missions, newest first, at most ``limit``."""

from __future__ import annotations

import pytest

from tests.service.conftest import StartJudge
from tests.service.support import ALICE, BOB

pytestmark = pytest.mark.docker


async def test_a_token_lists_its_own_missions_newest_first(start_judge: StartJudge) -> None:
    judge, api = await start_judge()
    mine = []
    for _ in range(3):
        status, body, _ = await api.submit({}, ALICE, how="bearer")
        assert status == 200, body
        mine.append(body["msg"]["id"])
    status, body, _ = await api.submit({"image": "judge/default"}, BOB, how="bearer")
    assert status == 200, body
    for mission_id in mine:
        await api.wait_for(mission_id, lambda b: b["state"] == "done")

    async with api.session.get(
        f"{judge.url}/api/missions?limit=2", headers={"Authorization": f"Bearer {ALICE}"}
    ) as resp:
        assert resp.status == 200
        listed = (await resp.json())["missions"]
    assert [m["id"] for m in listed] == [mine[2], mine[1]]
    async with api.session.get(
        f"{judge.url}/api/missions?limit=2&offset=2", headers={"Authorization": f"Bearer {ALICE}"}
    ) as resp:
        rest = await resp.json()
    assert [m["id"] for m in rest["missions"]] == [mine[0]]
    assert rest["total"] == 3
    assert listed[0]["state"] == "done"
    assert listed[0]["kind"] == "mission"
    assert listed[0]["runs"] == 1
    assert listed[0]["created_at"] <= listed[0]["updated_at"]
    assert "mission" not in listed[0]
    assert "mission_result" not in listed[0]

    async with api.session.get(
        f"{judge.url}/api/missions", headers={"Authorization": f"Bearer {BOB}"}
    ) as resp:
        theirs = (await resp.json())["missions"]
    assert [m["image"] for m in theirs] == ["judge/default"]
    assert not {m["id"] for m in theirs} & set(mine)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "x"),
        ("limit", "-1"),
        ("limit", "1.5"),
        ("limit", "٣"),
        ("offset", "-1"),
        ("offset", "1e3"),
        ("offset", "99999999999"),
    ],
)
async def test_a_bad_limit_or_offset_is_refused_by_name(
    start_judge: StartJudge, name: str, value: str
) -> None:
    judge, api = await start_judge()
    async with api.session.get(
        f"{judge.url}/api/missions",
        params={name: value},
        headers={"Authorization": f"Bearer {ALICE}"},
    ) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert (error["code"], error["path"]) == (f"invalid_{name}", name)


async def test_the_list_needs_a_token(start_judge: StartJudge) -> None:
    judge, api = await start_judge()
    async with api.session.get(f"{judge.url}/api/missions") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
