"""The door's HTTP surface over a fake core: routes, prefixes, auth, errors, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tarfile
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from orchestrator.run.runner import MissionIO
from orchestrator.sandbox.tar import archive_members, build_tar
from service.frontdoors.piston.frontdoor import PistonDoor
from service.frontdoors.piston.translate import ARTIFACT
from tests.piston.fakecore import TOKEN, FakeCore, app_with, echo_stdin, entry, meta
from tests.piston.fixtures import body, settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def client_for(aiohttp_client: Any, core: FakeCore, **settings: Any) -> TestClient[Any, Any]:
    return await aiohttp_client(app_with(core, **settings))


@pytest.mark.parametrize("prefix", ["/api/v2", "/api/v2/piston"])
@pytest.mark.parametrize("slash", ["", "/"])
async def test_every_route_under_both_prefixes(
    aiohttp_client: Any, prefix: str, slash: str
) -> None:
    core = FakeCore()
    client = await client_for(aiohttp_client, core)
    got = await client.get(f"{prefix}/runtimes{slash}")
    assert got.status == 200
    listed = await got.json()
    assert {"language": "c", "version": "12.2.0", "aliases": ["gcc"], "runtime": "gcc"} in listed
    assert {
        "language": "python",
        "version": "3.11.2",
        "aliases": ["py", "py3", "python3"],
    } in listed
    ran = await client.post(f"{prefix}/execute{slash}", json=body(stdin="hi"), headers=AUTH)
    assert ran.status == 200, await ran.text()
    answer = await ran.json()
    assert answer["run"]["stdout"] == "hi\npython3 main.py"
    assert (answer["language"], answer["version"]) == ("python", "3.11.2")
    packages = await client.get(f"{prefix}/packages{slash}")
    assert (await packages.json())[0]["installed"] is True
    install = await client.post(f"{prefix}/packages{slash}", json={}, headers=AUTH)
    assert install.status == 405
    assert install.headers["Allow"] == "GET, HEAD"
    assert "image" in (await install.json())["message"]


async def test_any_content_type_is_json(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, FakeCore())
    raw = json.dumps(body()).encode()
    for ctype in (None, "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        headers = dict(AUTH)
        if ctype:
            headers["Content-Type"] = ctype
        got = await client.post("/api/v2/execute", data=raw, headers=headers)
        assert got.status == 200, await got.text()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"language": ', "Unexpected end of JSON input"),
        (b'{"language" 1}', "Unexpected token 1 in JSON at position 12"),
        (b"", "Unexpected end of JSON input"),
        (b"\xff\xfe", "the body is not UTF-8 encoded JSON"),
        (b"[]", "language is required as a string"),
        (b'{"language": NaN}', "the body is not valid JSON: NaN is not a JSON number"),
    ],
)
async def test_malformed_bodies(aiohttp_client: Any, raw: bytes, message: str) -> None:
    client = await client_for(aiohttp_client, FakeCore())
    got = await client.post("/api/v2/execute", data=raw, headers=AUTH)
    assert got.status == 400
    assert await got.json() == {"message": message}


async def test_pistons_400s_come_back_as_messages(aiohttp_client: Any) -> None:
    core = FakeCore()
    client = await client_for(aiohttp_client, core)
    got = await client.post("/api/v2/execute", json=body(language="cobol"), headers=AUTH)
    assert (got.status, await got.json()) == (400, {"message": "cobol-3.11.2 runtime is unknown"})
    assert core.missions == []


async def test_a_large_body_is_decoded_the_same(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, FakeCore())
    big = body(files=[{"content": "print(1)"}, {"name": "data", "content": "x" * 100_000}])
    got = await client.post("/api/v2/execute", json=big, headers=AUTH)
    assert got.status == 200


async def test_too_large_a_body_is_413(aiohttp_client: Any) -> None:
    core = FakeCore()
    core.max_body_bytes = 1024
    client = await client_for(aiohttp_client, core)
    big = body(files=[{"content": "x" * 5000}])
    got = await client.post("/api/v2/execute", json=big, headers=AUTH)
    assert got.status == 413
    assert "too large" in (await got.json())["message"]


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", TOKEN, f"  {TOKEN} "])
async def test_a_token_as_bearer_or_bare(aiohttp_client: Any, header: str) -> None:
    core = FakeCore()
    client = await client_for(aiohttp_client, core)
    got = await client.post("/api/v2/execute", json=body(), headers={"Authorization": header})
    assert got.status == 200
    assert core.missions[0][0] == f"hash-of-{TOKEN}"


async def test_no_token_or_a_wrong_one_is_401(aiohttp_client: Any) -> None:
    core = FakeCore()
    client = await client_for(aiohttp_client, core, anonymous=True)
    missing = await client_for(aiohttp_client, core)
    got = await missing.post("/api/v2/execute", json=body())
    assert got.status == 401
    assert "token is required" in (await got.json())["message"]
    wrong = await client.post("/api/v2/execute", json=body(), headers={"Authorization": "nope"})
    assert wrong.status == 401  # anonymous use never takes a wrong token
    assert await wrong.json() == {"message": "unknown or revoked token"}
    assert core.missions == []


async def test_anonymous_clients_share_one_tenant_limited_per_address(aiohttp_client: Any) -> None:
    core = FakeCore()
    client = await client_for(aiohttp_client, core, anonymous=True, anonymous_rate_limit=2)
    for _ in range(2):
        got = await client.post("/api/v2/execute", json=body())
        assert got.status == 200
        assert got.headers["RateLimit-Limit"] == "2"
    refused = await client.post("/api/v2/execute", json=body())
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "at most 2" in (await refused.json())["message"]
    assert {tenant for tenant, _, _ in core.missions} == {"anonymous:piston"}
    # A token still gets in, under its own limit.
    assert (await client.post("/api/v2/execute", json=body(), headers=AUTH)).status == 200


async def test_the_judges_rate_limit_per_token(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, FakeCore(rate_limit=1))
    assert (await client.post("/api/v2/execute", json=body(), headers=AUTH)).status == 200
    refused = await client.post("/api/v2/execute", json=body(), headers=AUTH)
    assert refused.status == 429
    assert "Retry-After" in refused.headers
    assert set(await refused.json()) == {"message"}


async def test_a_mission_that_cannot_end_in_time_is_cancelled_with_503(aiohttp_client: Any) -> None:
    core = FakeCore(script=lambda mission, io: None)
    client = await client_for(
        aiohttp_client, core, queue_wait_s=0, run_timeout=100, run_cpu_time=100
    )
    got = await client.post("/api/v2/execute", json=body(), headers=AUTH)
    assert got.status == 503
    assert got.headers["Retry-After"] == "10"
    assert "retry later" in (await got.json())["message"]
    assert core.cancelled == [1]


async def test_queue_full_and_shutdown_are_pistons_messages(aiohttp_client: Any) -> None:
    from service.pipeline.intake import QueueFull, ShuttingDown

    core = FakeCore()
    client = await client_for(aiohttp_client, core)

    async def full(*args: Any) -> int:
        raise QueueFull(retry_after_s=7)

    core.submit = full  # type: ignore[method-assign]
    got = await client.post("/api/v2/execute", json=body(), headers=AUTH)
    assert (got.status, got.headers["Retry-After"]) == (429, "7")
    assert set(await got.json()) == {"message"}

    async def stopping(*args: Any) -> int:
        raise ShuttingDown()

    core.submit = stopping  # type: ignore[method-assign]
    got = await client.post("/api/v2/execute", json=body(), headers=AUTH)
    assert (got.status, got.headers["Retry-After"]) == (503, "5")


async def test_unknown_paths_and_methods_are_pistons_404(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, FakeCore())
    for method, path in [
        ("GET", "/api/v2/nope"),
        ("GET", "/api/v2/execute"),
        ("PUT", "/api/v2/runtimes"),
    ]:
        got = await client.request(method, path)
        assert (got.status, await got.json()) == (404, {"message": "Not Found"})


async def test_compile_error_answers_compile_as_run(aiohttp_client: Any) -> None:
    def failing(mission: dict[str, Any], io: Any) -> dict[str, Any]:
        ends = {
            "compile": entry(meta(status="RE", **{"exit-code": 1}), err=b"main.c:1: error"),
            "pack": entry(),
            "run": entry(meta(status="RE", message="command './a.out' not found")),
        }
        return {"prepare": {"execute": [ends[ex["name"]] for ex in mission["prepare"]["execute"]]}}

    core = FakeCore(script=failing)
    client = await client_for(aiohttp_client, core)
    c = body(language="c", version="*", files=[{"content": "int main("}])
    for _ in range(2):
        answer = await (await client.post("/api/v2/execute", json=c, headers=AUTH)).json()
        assert answer["compile"]["stderr"] == "main.c:1: error"
        assert answer["compile"]["status"] == "RE"
        assert answer["run"] == answer["compile"]
    # The failure was kept: the second execute ran nothing.
    assert len(core.missions) == 1


async def test_a_client_that_goes_away_cancels_its_mission(aiohttp_client: Any) -> None:
    core = FakeCore(script=lambda mission, io: None)
    client = await client_for(aiohttp_client, core)
    request = asyncio.ensure_future(client.post("/api/v2/execute", json=body(), headers=AUTH))
    async with asyncio.timeout(10):
        while not core.missions:  # the mission is submitted and waited for
            await asyncio.sleep(0.01)
    request.cancel()  # the client closes its connection
    with contextlib.suppress(asyncio.CancelledError):
        await request
    async with asyncio.timeout(10):
        while core.cancelled != [1]:
            await asyncio.sleep(0.05)


async def test_the_doors_metrics(aiohttp_client: Any) -> None:
    core = FakeCore()
    door = PistonDoor()
    root = web.Application()
    root.add_subapp("/api/v2", door.sub_app(settings(), core))
    client = await aiohttp_client(root)
    c = body(language="c", version="*", files=[{"content": "int main(){}"}])
    for _ in range(2):
        assert (await client.post("/api/v2/execute", json=c, headers=AUTH)).status == 200
    families = {m.name: m.samples[0].value for m in await door.metrics()}
    assert families["judge_piston_compile_cache_hits"] == 1
    assert families["judge_piston_compile_cache_misses"] == 1
    assert families["judge_piston_compile_cache_bytes"] > 0
    assert families["judge_piston_live_jobs"] == 0
    # The second execute unpacked the first one's compiled box instead of compiling.
    second = core.missions[1][1]["prepare"]["execute"]
    assert [ex["name"] for ex in second] == ["unpack", "run"]
    assert core.missions[1][2].inputs[".piston/artifact.tar"] == b"compiled box"


def _packed(files: dict[str, bytes], link: bool = False) -> bytes:
    """What ``tar -cf artifact.tar .`` leaves in a sandbox: a root ``./`` member, then files
    (and a symbolic link when ``link``)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        root = tarfile.TarInfo("./")
        root.type, root.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(root)
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        if link:
            sym = tarfile.TarInfo("./passwd")
            sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(sym)
    return out.getvalue()


@pytest.mark.parametrize("link", [False, True])
async def test_a_cached_compile_is_placed_without_an_execute_once_vetted(
    aiohttp_client: Any, link: bool
) -> None:
    packed = _packed({"a.out": b"\x7fELF binary"}, link=link)

    def script(mission: dict[str, Any], given: MissionIO) -> dict[str, Any]:
        result = echo_stdin(mission, given)
        if ARTIFACT in given.collected:
            given.collected[ARTIFACT] = build_tar({"artifact.tar": packed})
        return result

    core = FakeCore(script)
    client = await aiohttp_client(app_with(core))
    c = body(language="c", version="*", files=[{"content": "int main(){}"}])
    for _ in range(2):
        assert (await client.post("/api/v2/execute", json=c, headers=AUTH)).status == 200
    second, placed = core.missions[1][1]["prepare"]["execute"], core.missions[1][2]
    if link:
        # A box holding a link is not vetted: it is unpacked inside the sandbox, as before.
        assert [ex["name"] for ex in second] == ["unpack", "run"]
        assert placed.inputs[ARTIFACT] == packed
        assert placed.archive == b""
    else:
        # Vetted once when kept: the next sandbox is handed its files, and only the run runs.
        assert [ex["name"] for ex in second] == ["run"]
        assert ARTIFACT not in placed.inputs
        assert archive_members(placed.archive) == [("a.out", "file", 11)]
