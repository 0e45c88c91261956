"""Bad submissions: each is a clear JSON 4xx naming the field, and nothing is stored.

Everything here is refused before the engine is asked anything; the server itself needs the
engine to start (``docker.from_env`` asks it for its API version), hence the marker.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.service.conftest import StartJudge
from tests.service.support import ALICE, Api, InProcessJudge

pytestmark = pytest.mark.docker

URL = "http://127.0.0.1:9/callback"


def execute(**fields: Any) -> dict[str, Any]:
    return {"return": {"url": URL}, "prepare": {"execute": [{"command": ["true"], **fields}]}}


@pytest.fixture
async def judge(start_judge: StartJudge) -> AsyncIterator[tuple[InProcessJudge, Api]]:
    judge, api = await start_judge()
    yield judge, api
    # Whatever a test sent, nothing was stored.
    assert await judge.app_store_counts() == {}


def error_of(status: int, body: dict[str, Any], expected_status: int) -> dict[str, Any]:
    assert status == expected_status, body
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "path"} <= set(error)
    assert error["message"]
    return error


BAD_MISSIONS: list[tuple[str, Any, str, str]] = [
    ("malformed JSON", '{"return": {"url": ', "mission", "not valid JSON"),
    ("not an object", "[1, 2]", "mission", "must be an object"),
    ("return without url", {"return": {}}, "mission.return.url", "is required"),
    (
        "memory as a string",
        execute(memory_limit="65536"),
        "mission.prepare.execute[0].memory_limit",
        "must be an integer",
    ),
    (
        "boolean as a number",
        {**execute(), "tick": 1},
        "mission.tick",
        "must be a boolean",
    ),
    (
        "command not a list",
        {"return": {"url": URL}, "prepare": {"execute": [{"command": "echo hi"}]}},
        "mission.prepare.execute[0].command",
        "must be an array",
    ),
    (
        "time limit too large",
        execute(time_limit=60001),
        "mission.prepare.execute[0].time_limit",
        "at most 60000",
    ),
    (
        "memory limit zero",
        execute(memory_limit=0),
        "mission.prepare.execute[0].memory_limit",
        "at least 1",
    ),
    (
        "record too large",
        execute(record={"stdout": 4097}),
        "mission.prepare.execute[0].record.stdout",
        "at most 4096",
    ),
    (
        "unknown key (a typo)",
        execute(memroy_limit=1024),
        "mission.prepare.execute[0].memroy_limit",
        "unknown key",
    ),
    (
        "unknown top-level key",
        {**execute(), "extra": True},
        "mission.extra",
        "unknown key",
    ),
    (
        "absolute stdout",
        execute(stdout="/etc/passwd"),
        "mission.prepare.execute[0].stdout",
        "relative path",
    ),
    (
        "dot-dot stdin",
        execute(stdin="../outside"),
        "mission.prepare.execute[0].stdin",
        "'..'",
    ),
    (
        "dot-dot file name",
        {"return": {"url": URL}, "prepare": {"file": {"a/../../b": "data:,x"}}},
        'mission.prepare.file["a/../../b"]',
        "'..'",
    ),
    (
        "absolute scope export",
        execute(scope={"enable": True, "export": ["/x"]}),
        "mission.prepare.execute[0].scope.export[0]",
        "relative path",
    ),
    (
        "payload key clashing with id",
        {"return": {"url": URL, "payload": {"id": 7}}},
        "mission.return.payload.id",
        "reserved",
    ),
    (
        "nested payload",
        {"return": {"url": URL, "payload": {"a": {"b": 1}}}},
        "mission.return.payload.a",
        "one level deep",
    ),
    (
        "callback not http",
        {"return": {"url": "file:///etc/passwd"}},
        "mission.return.url",
        "http or https",
    ),
    (
        "unknown format",
        {"return": {"url": URL, "format": "xml"}},
        "mission.return.format",
        "must be one of",
    ),
    (
        "task setting __TASK_ID__",
        {
            "return": {"url": URL},
            "tasks": {"task": [{"macro": {"__TASK_ID__": "1"}}], "execute": []},
        },
        "mission.tasks.task[0].macro.__TASK_ID__",
        "reserved",
    ),
    (
        "macro putting .. into a path",
        {
            "return": {"url": URL},
            "tasks": {
                "task": [{"macro": {"NAME": ".."}}],
                "execute": [{"command": ["true"], "stdout": "NAME/out"}],
            },
        },
        "mission.tasks.task[0].execute[0].stdout",
        "after macro expansion",
    ),
    (
        "parallel tasks with an unscoped execute",
        {
            "return": {"url": URL},
            "tasks": {"task": [{}], "execute": [{"command": ["true"]}], "parallel": 2},
        },
        "mission.tasks.parallel",
        "every execute of tasks.execute is scoped",
    ),
    (
        "newline in a file name",
        {"return": {"url": URL}, "prepare": {"file": {"a\nb": "data:,x"}}},
        'mission.prepare.file["a\\nb"]',
        "control character",
    ),
    (
        "escape in a redirection",
        execute(stdout="x\u001by"),
        "mission.prepare.execute[0].stdout",
        "control character",
    ),
    (
        "payload key with a leading space",
        {"return": {"url": URL, "payload": {" id": 1}}},
        'mission.return.payload[" id"]',
        "A-Z a-z 0-9",
    ),
    (
        "payload key with a NUL",
        {"return": {"url": URL, "payload": {"id\u0000": 1}}},
        'mission.return.payload["id\\u0000"]',
        "A-Z a-z 0-9",
    ),
    (
        "payload key with a newline",
        {"return": {"url": URL, "payload": {"mission_result\n": 1}}},
        'mission.return.payload["mission_result\\n"]',
        "A-Z a-z 0-9",
    ),
]


TOO_LARGE: list[tuple[str, Any, str]] = [
    (
        "a million planned executes",
        {
            "return": {"url": URL},
            "tasks": {"task": [{}] * 1000, "execute": [{"command": ["true"]}] * 1000},
        },
        "mission.tasks",
    ),
    (
        "a macro value of 100 KiB",
        {
            "return": {"url": URL},
            "tasks": {"task": [{"macro": {"BIG": "x" * (100 << 10)}}], "execute": []},
        },
        "mission.tasks.task[0].macro.BIG",
    ),
]


@pytest.mark.parametrize(
    ("mission", "path"), [c[1:] for c in TOO_LARGE], ids=[c[0] for c in TOO_LARGE]
)
@pytest.mark.parametrize("how", ["form", "json"])
async def test_mission_over_a_cap_is_413_with_its_path(
    judge: tuple[InProcessJudge, Api], how: str, mission: Any, path: str
) -> None:
    _, api = judge
    status, body, _ = await api.submit(mission, how=how)
    error = error_of(status, body, 413)
    assert error["code"] == "mission_too_large"
    assert error["path"] == path


@pytest.mark.parametrize(
    ("mission", "path", "message"),
    [case[1:] for case in BAD_MISSIONS],
    ids=[case[0] for case in BAD_MISSIONS],
)
@pytest.mark.parametrize("how", ["form", "json"])
async def test_bad_mission_is_400_with_its_path(
    judge: tuple[InProcessJudge, Api], how: str, mission: Any, path: str, message: str
) -> None:
    _, api = judge
    status, body, _ = await api.submit(mission, how=how)
    error = error_of(status, body, 400)
    assert error["code"] == "invalid_mission"
    assert error["path"] == path
    assert message in error["message"], error
    assert error["errors"][0] == {"path": path, "message": error["message"]}


async def test_every_problem_is_listed(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    mission = {
        "return": {"url": URL},
        "prepare": {"execute": [{"command": [], "time_limit": 0, "stdout": "/abs"}]},
    }
    status, body, _ = await api.submit(mission)
    error = error_of(status, body, 400)
    paths = {e["path"] for e in error["errors"]}
    base = "mission.prepare.execute[0]"
    assert paths == {f"{base}.command", f"{base}.time_limit", f"{base}.stdout"}


async def test_malformed_json_body(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    for raw in (b'{"token": "x", "mission": ', b"[1]", b'{"a": NaN}', b"\xff\xfe"):
        async with api.session.post(
            f"{api.url}/api/missions/",
            data=raw,
            headers={"Content-Type": "application/json"},
        ) as resp:
            error = error_of(resp.status, await resp.json(), 400)
        assert (error["code"], error["path"]) == ("malformed", "body"), raw


async def test_unknown_or_missing_fields(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    async with api.session.post(
        f"{api.url}/api/missions/",
        data={"token": ALICE, "mission": json.dumps(execute()), "missoin": "x"},
    ) as resp:
        error = error_of(resp.status, await resp.json(), 400)
    assert error["path"] == "missoin"
    async with api.session.post(f"{api.url}/api/missions/", data={"token": ALICE}) as resp:
        error = error_of(resp.status, await resp.json(), 400)
    assert error["path"] == "mission"


async def test_other_media_types_are_415(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    async with api.session.post(
        f"{api.url}/api/missions/", data=b"mission", headers={"Content-Type": "text/plain"}
    ) as resp:
        error_of(resp.status, await resp.json(), 415)


@pytest.mark.parametrize(
    ("how", "token"),
    [
        ("form", None),
        ("form", ""),
        ("form", "not-a-token"),
        ("json", None),
        ("json", ""),
        ("json", "not-a-token"),
        ("json", 42),
        ("bearer", "not-a-token"),
    ],
)
async def test_missing_or_unknown_token_is_401(
    judge: tuple[InProcessJudge, Api], how: str, token: Any
) -> None:
    _, api = judge
    status, body, headers = await api.submit(execute(), token=token, how=how)
    error = error_of(status, body, 401)
    assert (error["code"], error["path"]) == ("unauthorized", "token")
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_token_is_checked_before_the_mission(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    status, body, _ = await api.submit("{not json", token="wrong")
    assert error_of(status, body, 401)["path"] == "token"


async def test_50_mib_body_is_413(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    body = io.BytesIO(b"token=x&mission=" + b"x" * (50 * 1024 * 1024))  # with Content-Length
    async with api.session.post(
        f"{api.url}/api/missions/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as resp:
        error = error_of(resp.status, await resp.json(), 413)
    assert error["code"] == "too_large"


async def test_chunked_body_over_the_limit_is_413(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    limit = judge[0].settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b"token=x&mission="
        for _ in range(limit // (1 << 20) + 1):
            yield b"x" * (1 << 20)

    async with api.session.post(
        f"{api.url}/api/missions/",
        data=chunks(),  # no Content-Length: the limit is found while reading
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as resp:
        error = error_of(resp.status, await resp.json(), 413)
    assert error["code"] == "too_large"


async def test_mission_ids_that_do_not_exist(judge: tuple[InProcessJudge, Api]) -> None:
    _, api = judge
    for mission_id in ("1", "999999", "abc", "-1", "1e3", "99999999999999999999999"):
        status, body = await api.get(mission_id)
        assert error_of(status, body, 404)["code"] == "not_found"
    status, body = await api.get(1, token="not-a-token")
    error_of(status, body, 401)


async def test_unknown_routes_and_methods_are_json(
    judge: tuple[InProcessJudge, Api], session: aiohttp.ClientSession
) -> None:
    _, api = judge
    async with session.get(f"{api.url}/api/missions/") as resp:
        error_of(resp.status, await resp.json(), 405)
        assert "POST" in resp.headers["Allow"]
    async with session.get(f"{api.url}/nowhere") as resp:
        error_of(resp.status, await resp.json(), 404)


async def test_more_parallel_tasks_than_the_server_allows(
    judge: tuple[InProcessJudge, Api], start_judge: StartJudge
) -> None:
    _, api = await start_judge(max_task_parallel=2)
    scoped = {"command": ["true"], "scope": {"enable": True}}
    mission = {"return": {"url": URL}, "tasks": {"task": [{}], "execute": [scoped], "parallel": 3}}
    status, body, _ = await api.submit(mission)
    error = error_of(status, body, 400)
    assert (error["code"], error["path"]) == ("invalid_mission", "mission.tasks.parallel")
    assert "at most 2" in error["message"]
