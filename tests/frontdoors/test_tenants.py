"""Tenant isolation, quota and retention of the executor and blob APIs, with a hostile second
token: whatever Bob knows of Alice's hashes, he gets 404 as if they did not exist, cannot cancel
her job, cannot read her files through an artifact or a mission, and storage stays bounded."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import aiohttp
import pytest

from service.frontdoors.webgme.keys import BLOBS, RETENTION
from service.frontdoors.webgme.tables import SweepResult
from service.keys import STORE
from service.store import hash_token
from service.store.sql import Statement
from tests.frontdoors.conftest import SEED_CONFIG, job_zip
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, BOB, Receiver, poll

ALICE_AUTH = {"Authorization": f"Bearer {ALICE}"}
BOB_AUTH = {"Authorization": f"Bearer {BOB}"}


async def call(
    session: aiohttp.ClientSession, method: str, url: str, auth: dict[str, str], **kw: Any
) -> tuple[int, Any]:
    async with session.request(method, url, headers=auth, **kw) as resp:
        body = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, json.loads(body)
        return resp.status, body


async def upload(
    session: aiohttp.ClientSession, url: str, auth: dict[str, str], name: str, data: bytes
) -> str:
    status, body = await call(
        session, "POST", f"{url}/rest/blob/createFile/{name}", auth, data=data
    )
    assert status == 200, body
    [blob] = body
    return str(blob)


async def artifact(
    session: aiohttp.ClientSession, url: str, auth: dict[str, str], content: dict[str, Any]
) -> tuple[int, Any]:
    doc = {"name": "a.zip", "size": 0, "mime": "application/zip", "content": content}
    doc["contentType"] = "complex"
    return await call(
        session, "POST", f"{url}/rest/blob/createMetadata/", auth, data=json.dumps(doc)
    )


async def test_blobs_are_visible_only_to_their_tokens(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge()
    url = api.url
    secret = b"alice's secret answer\n"
    mine = await upload(session, url, ALICE_AUTH, "secret.txt", secret)
    content_hash = hashlib.sha1(secret).hexdigest()
    status, made = await artifact(
        session, url, ALICE_AUTH, {"s.txt": {"content": content_hash, "contentType": "object"}}
    )
    assert status == 200, made
    [art] = made

    for path in (
        f"metadata/{mine}",
        f"metadata/{art}",
        f"view/{mine}",
        f"download/{mine}",
        f"download/{mine}/",
        f"view/{art}/s.txt",
        f"download/{art}",
        f"download/{art}/s.txt",
    ):
        status, body = await call(session, "GET", f"{url}/rest/blob/{path}", BOB_AUTH)
        assert status == 404, (path, body)
        status, _ = await call(session, "GET", f"{url}/rest/blob/{path}", ALICE_AUTH)
        assert status == 200, path
    assert (await call(session, "GET", f"{url}/rest/blob/metadata", BOB_AUTH))[1] == {}
    listed = (await call(session, "GET", f"{url}/rest/blob/metadata", ALICE_AUTH))[1]
    assert sorted(listed) == sorted([mine, art])

    # Bob knows the content hash and Alice's blob hashes: an artifact of them is refused.
    for entry in (
        {"content": content_hash, "contentType": "object"},
        {"content": mine, "contentType": "softLink"},
        {"content": art, "contentType": "softLink"},
    ):
        status, body = await artifact(session, url, BOB_AUTH, {"x.txt": entry})
        assert status == 400, body
        assert entry["content"] in body["error"]["message"]
    assert (await call(session, "GET", f"{url}/rest/blob/metadata", BOB_AUTH))[1] == {}

    # Bob uploading the same bytes gets the same hash (one stored copy) and may use it; its
    # time is his own upload's, so it does not tell him that Alice holds the file.
    status, body = await call(session, "GET", f"{url}/rest/blob/metadata/{mine}", ALICE_AUTH)
    alice_time = body["lastModified"]
    await asyncio.sleep(0.01)  # a later millisecond for Bob's upload, not a synchronisation
    status, body = await call(
        session, "POST", f"{url}/rest/blob/createFile/secret.txt", BOB_AUTH, data=secret
    )
    assert list(body) == [mine]
    assert body[mine]["lastModified"] > alice_time
    status, again = await artifact(
        session, url, BOB_AUTH, {"s.txt": {"content": content_hash, "contentType": "object"}}
    )
    assert (status, list(again)) == (200, [art])
    status, body = await call(session, "GET", f"{url}/rest/blob/view/{art}/s.txt", BOB_AUTH)
    assert (status, body) == (200, secret)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"contentType": "object", "content": "0" * 40}, "only 'complex'"),
        ({"content": {"../x": {"content": "0" * 40, "contentType": "object"}}}, "relative path"),
        ({"content": {"/etc/x": {"content": "0" * 40, "contentType": "object"}}}, "relative"),
        ({"content": {"a\nb": {"content": "0" * 40, "contentType": "object"}}}, "control"),
        ({"content": {"a": {"content": "../../x", "contentType": "object"}}}, "is invalid"),
        ({"content": {"a": {"content": "0" * 40, "contentType": "complex"}}}, "contentType"),
        ({"content": {"a": {"content": "0" * 40, "contentType": "object", "x": 1}}}, "must be"),
        ({"content": {"a": {"content": "0" * 40, "contentType": "object"}}}, "no file content"),
        ({"content": [], "name": "x"}, "content"),
        ({"size": -1, "content": {}}, "size"),
    ],
    ids=[
        "object",
        "dotdot",
        "absolute",
        "control",
        "bad-hash",
        "nested",
        "extra-key",
        "unknown",
        "list",
        "size",
    ],
)
async def test_bad_artifacts_are_refused(
    start_judge: StartJudge, session: aiohttp.ClientSession, doc: dict[str, Any], expected: str
) -> None:
    _, api = await start_judge()
    body = {"name": "a.zip", "contentType": "complex", **doc}
    status, answer = await call(
        session, "POST", f"{api.url}/rest/blob/createMetadata", ALICE_AUTH, data=json.dumps(body)
    )
    assert status == 400, answer
    assert expected in answer["error"]["message"]
    status, answer = await call(
        session, "POST", f"{api.url}/rest/blob/createMetadata", ALICE_AUTH, data=b"{not json"
    )
    assert status == 400


async def test_the_storage_quota_is_per_token(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge(storage_quota_bytes=10_000)
    url = api.url
    await upload(session, url, ALICE_AUTH, "a.bin", b"a" * 6000)
    status, body = await call(
        session, "POST", f"{url}/rest/blob/createFile/b.bin", ALICE_AUTH, data=b"b" * 6000
    )
    assert status == 413, body
    assert body["error"]["code"] == "quota_exceeded"
    # The same blob again costs nothing; another token has its own quota.
    await upload(session, url, ALICE_AUTH, "a.bin", b"a" * 6000)
    await upload(session, url, BOB_AUTH, "b.bin", b"b" * 6000)
    # Many uploads at once cannot each see room for themselves.
    results = await asyncio.gather(
        *(
            call(
                session, "POST", f"{url}/rest/blob/createFile/c{i}.bin", BOB_AUTH, data=b"c" * 1500
            )
            for i in range(8)
        )
    )
    assert sorted(status for status, _ in results) == [200, 200] + [413] * 6


async def test_retention_frees_storage_and_counts_it(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    judge, api = await start_judge(retention_s=100, retention_sweep_s=3600)
    url = api.url
    data = b"x" * 5000
    kept = b"kept by bob\n"
    alice_only = await upload(session, url, ALICE_AUTH, "x.bin", data)
    shared = await upload(session, url, ALICE_AUTH, "kept.txt", kept)
    status, made = await artifact(
        session, url, ALICE_AUTH, {"x.bin": {"content": alice_only, "contentType": "softLink"}}
    )
    assert status == 200
    assert await upload(session, url, BOB_AUTH, "kept.txt", kept) == shared
    sweeper = judge.app[RETENTION]
    assert await sweeper.sweep() == SweepResult()  # nothing is old enough yet
    # Alice last touched her blobs long ago (white-box: age her rows); Bob's copy is recent.
    await judge.app[STORE].sql.execute(
        Statement("UPDATE blob_owners SET touched_at = touched_at - 1000 WHERE token_hash = :t"),
        t=hash_token(ALICE),
    )
    result = await sweeper.sweep()
    assert result.blobs == 2  # her file and her artifact; the shared file stays with Bob
    assert result.contents == (hashlib.sha1(data).hexdigest(),)
    assert judge.app[BLOBS].bytes_freed == len(data)
    for blob in (alice_only, *made, shared):
        status, _ = await call(session, "GET", f"{url}/rest/blob/metadata/{blob}", ALICE_AUTH)
        assert status == 404
    status, body = await call(session, "GET", f"{url}/rest/blob/view/{shared}", BOB_AUTH)
    assert (status, body) == (200, kept)
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(samples["judge_retention_freed_bytes_total"]) == len(data)
    assert float(samples['judge_retention_removed_total{what="blobs"}']) == 2
    assert float(samples["judge_retention_sweeps_total"]) >= 1


@pytest.mark.docker
async def test_jobs_answer_only_to_their_token(
    start_judge: StartJudge, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    _, api = await start_judge()
    url = api.url
    slow = {
        "cmd": "sh",
        "args": ["-c", "sleep 3; echo alice-secret > secret.txt"],
        "resultArtifacts": [{"name": "all", "resultPatterns": []}],
        "outputInterval": 200,
    }
    definition = job_zip(slow)
    job = await upload(session, url, ALICE_AUTH, "job.zip", definition)
    status, _ = await call(session, "POST", f"{url}/rest/executor/create/{job}", ALICE_AUTH)
    assert status == 200
    info = f"{url}/rest/executor/info/{job}"
    await poll(
        lambda: call(session, "GET", info, ALICE_AUTH), lambda r: r[1]["status"] == "RUNNING", 60
    )
    # While it runs Bob can neither see nor cancel it, nor create it from a hash he does not see.
    for method, path in (
        ("GET", f"info/{job}"),
        ("GET", f"output/{job}"),
        ("GET", f"output/{job}?start=0&end=5"),
        ("POST", f"cancel/{job}"),
        ("POST", f"create/{job}"),
    ):
        status, body = await call(session, method, f"{url}/rest/executor/{path}", BOB_AUTH)
        assert status == 404, (path, body)
    assert (await call(session, "GET", f"{url}/rest/executor/", BOB_AUTH))[1] == {}
    assert (await call(session, "GET", f"{url}/rest/executor/?status=RUNNING", BOB_AUTH))[1] == {}
    listed = await call(session, "GET", f"{url}/rest/executor/?status=FAILED_UNZIP", ALICE_AUTH)
    assert listed == (200, {})  # one of WebGME's own statuses: valid, and none here
    listed = await call(session, "GET", f"{url}/rest/executor/?status=BOGUS", ALICE_AUTH)
    assert listed[0] == 400
    done = await poll(
        lambda: call(session, "GET", info, ALICE_AUTH),
        lambda r: r[1]["status"] not in ("CREATED", "RUNNING"),
        60,
    )
    assert done[1]["status"] == "SUCCESS"  # Bob's cancel changed nothing
    result = done[1]["resultHashes"]["all"]
    for path in (f"download/{result}", f"download/{result}/secret.txt", f"metadata/{result}"):
        assert (await call(session, "GET", f"{url}/rest/blob/{path}", BOB_AUTH))[0] == 404
    status, body = await call(
        session, "GET", f"{url}/rest/blob/download/{result}/secret.txt", ALICE_AUTH
    )
    assert (status, body) == (200, b"alice-secret\n")

    # A mission of Bob's cannot fetch Alice's result as a blob: file.
    mission = {
        "return": {"url": receiver.url},
        "prepare": {
            "file": {"stolen.zip": f"blob:{result}"},
            "execute": [{"command": ["true"]}],
        },
    }
    status, body, _ = await api.submit(mission, token=BOB)
    assert status == 200, body
    stolen = await api.wait_for(body["msg"]["id"], lambda b: b["state"] == "done", token=BOB)
    assert stolen["mission_result"]["prepare"]["file"]["stolen.zip"]["status"] == 404

    # Bob uploading the same job gets his own job; Alice's stays as it was.
    assert await upload(session, url, BOB_AUTH, "job.zip", definition) == job
    status, bobs = await call(session, "POST", f"{url}/rest/executor/create/{job}", BOB_AUTH)
    assert (status, bobs["status"]) == (200, "CREATED")
    assert (await call(session, "GET", info, ALICE_AUTH))[1] == done[1]
    status, body = await call(session, "POST", f"{url}/rest/executor/cancel/{job}", BOB_AUTH)
    assert status == 200
    bob_done = await poll(
        lambda: call(session, "GET", info, BOB_AUTH),
        lambda r: r[1]["status"] not in ("CREATED", "RUNNING"),
        60,
    )
    assert bob_done[1]["status"] == "CANCELED"
    assert (await call(session, "GET", info, ALICE_AUTH))[1] == done[1]
    await asyncio.sleep(0)


@pytest.mark.docker
async def test_results_over_the_quota_fail_the_job(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge(storage_quota_bytes=200_000)
    config = {
        "cmd": "sh",
        "args": ["-c", "head -c 300000 /dev/zero > big.bin"],
        "resultArtifacts": [{"name": "all", "resultPatterns": []}],
    }
    job = await upload(session, api.url, ALICE_AUTH, "big.zip", job_zip(config))
    await call(session, "POST", f"{api.url}/rest/executor/create/{job}", ALICE_AUTH)
    done = await poll(
        lambda: call(session, "GET", f"{api.url}/rest/executor/info/{job}", ALICE_AUTH),
        lambda r: r[1]["status"] not in ("CREATED", "RUNNING"),
        60,
    )
    assert done[1]["status"] == "FAILED_TO_EXECUTE"
    assert "quota" in done[1]["error"]
    assert done[1]["resultHashes"] == {}
    # The seed's job still fits.
    seed = await upload(session, api.url, ALICE_AUTH, "seed.zip", job_zip(SEED_CONFIG))
    assert (await call(session, "POST", f"{api.url}/rest/executor/create/{seed}", ALICE_AUTH))[
        0
    ] == 200
