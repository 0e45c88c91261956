"""The executor API (seed 001) end to end: a real judge on a real port, real sandboxes."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.frontdoors.conftest import AUTH, SEED_CONFIG, job_zip, make_zip
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, poll

pytestmark = pytest.mark.docker

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
HASH = re.compile(r"[0-9a-f]{40}")


async def upload(session: aiohttp.ClientSession, url: str, name: str, data: bytes) -> Any:
    async with session.post(f"{url}/rest/blob/createFile/{name}", data=data, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url, headers=AUTH) as resp:
        return resp.status, await resp.json()


async def finished_job(session: aiohttp.ClientSession, url: str, job: str) -> dict[str, Any]:
    async def info() -> dict[str, Any]:
        status, body = await get_json(session, f"{url}/rest/executor/info/{job}")
        assert status == 200, body
        return body

    return await poll(info, lambda b: b["status"] not in ("CREATED", "RUNNING"), 60)


async def test_the_seed_walkthrough(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge()
    url = api.url
    data = job_zip(SEED_CONFIG)

    # Upload the job ZIP to the blob.
    uploaded = await upload(session, url, "jobdefinition.zip", data)
    [(job, meta)] = uploaded.items()
    assert HASH.fullmatch(job)
    assert list(meta) == [
        "name", "size", "mime", "isPublic", "tags", "content", "contentType", "lastModified"
    ]  # fmt: skip
    assert meta["name"] == "jobdefinition.zip"
    assert meta["size"] == len(data)
    assert meta["mime"] == "application/zip"
    assert (meta["isPublic"], meta["tags"], meta["contentType"]) == (False, [], "object")
    assert meta["content"] == hashlib.sha1(data).hexdigest()
    assert ISO.fullmatch(meta["lastModified"])
    assert await get_json(session, f"{url}/rest/blob/metadata/{job}") == (200, meta)

    # Create a job on the executor.
    async with session.post(f"{url}/rest/executor/create/{job}", headers=AUTH) as resp:
        assert resp.status == 200
        created = await resp.json()
    assert list(created) == [
        "hash", "resultHashes", "resultSuperSet", "userId", "status", "createTime",
        "startTime", "finishTime", "worker", "labels",
    ]  # fmt: skip
    assert created["hash"] == job
    assert created["status"] == "CREATED"
    assert (created["resultHashes"], created["resultSuperSet"], created["userId"]) == ([], None, [])
    assert ISO.fullmatch(created["createTime"])
    assert (created["startTime"], created["finishTime"], created["worker"]) == (None, None, None)

    # Poll.
    done = await finished_job(session, url, job)
    assert done["status"] == "SUCCESS", done
    assert set(done) == {*created, "_id"}
    assert list(done["resultHashes"]) == ["all"]
    assert done["createTime"] == created["createTime"]
    assert ISO.fullmatch(done["startTime"])
    assert ISO.fullmatch(done["finishTime"])
    assert done["startTime"] <= done["finishTime"]
    assert isinstance(done["worker"], str)
    assert done["worker"]

    # Retrieve the results: the whole zip, then one file of it.
    result = done["resultHashes"]["all"]
    async with session.get(f"{url}/rest/blob/download/{result}", headers=AUTH) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    stdout = b"some sample text to be written to file to be written to job_stdout.txt\n"
    assert sorted(archive.namelist()) == [
        "executor_config.json",
        "job_stderr.txt",
        "job_stdout.txt",
    ]
    assert archive.read("job_stdout.txt") == stdout
    assert archive.read("job_stderr.txt") == b""
    path = f"{url}/rest/blob/download/{result}/job_stdout.txt"
    async with session.get(path, headers=AUTH) as resp:
        assert resp.status == 200
        assert await resp.read() == stdout

    # Beyond the seed: output, listing, idempotent create.
    status, output = await get_json(session, f"{url}/rest/executor/output/{job}")
    assert status == 200
    assert output[0]["output"] == stdout.decode()
    # The listing is keyed by job hash, as WebGME's executor answers it.
    status, listed = await get_json(session, f"{url}/rest/executor/?status=SUCCESS")
    assert list(listed) == [job]
    assert listed[job]["status"] == "SUCCESS"
    assert (await get_json(session, f"{url}/rest/executor/?status=RUNNING"))[1] == {}
    async with session.post(f"{url}/rest/executor/create/{job}", headers=AUTH) as resp:
        again = await resp.json()
    assert again["status"] == "SUCCESS"
    assert again["createTime"] == created["createTime"]


async def test_artifacts_filter_files_and_a_failing_command(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge()
    config = {
        "cmd": "sh",
        "args": ["-c", "mkdir -p out && echo 1 > out/a.txt && echo 2 > b.log && echo oops >&2"],
        "resultArtifacts": [
            {"name": "texts", "resultPatterns": ["*.txt"]},
            {"name": "logs", "resultPatterns": ["*.log"]},
        ],
    }
    [job] = await upload(session, api.url, "job.zip", job_zip(config, **{"data.bin": b"x"}))
    async with session.post(f"{api.url}/rest/executor/create/{job}", headers=AUTH) as resp:
        assert resp.status == 200
    done = await finished_job(session, api.url, job)
    assert done["status"] == "SUCCESS"
    names = {}
    for artifact, blob in done["resultHashes"].items():
        async with session.get(f"{api.url}/rest/blob/download/{blob}", headers=AUTH) as resp:
            names[artifact] = sorted(zipfile.ZipFile(io.BytesIO(await resp.read())).namelist())
    assert names == {
        "texts": ["job_stderr.txt", "job_stdout.txt", "out/a.txt"],
        "logs": ["b.log"],
    }
    path = f"{api.url}/rest/blob/download/{done['resultHashes']['texts']}/job_stderr.txt"
    async with session.get(path, headers=AUTH) as resp:
        assert await resp.read() == b"oops\n"

    failing = {"cmd": "sh", "args": ["-c", "exit 3"], "resultArtifacts": []}
    [job] = await upload(session, api.url, "fail.zip", job_zip(failing))
    async with session.post(f"{api.url}/rest/executor/create/{job}", headers=AUTH) as resp:
        assert resp.status == 200
    done = await finished_job(session, api.url, job)
    assert done["status"] == "FAILED_TO_EXECUTE"
    assert "exit" in done["error"]


async def test_cancel_then_create_anew(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge()
    config = {"cmd": "sleep", "args": ["30"], "resultArtifacts": []}
    [job] = await upload(session, api.url, "sleep.zip", job_zip(config))
    async with session.post(f"{api.url}/rest/executor/create/{job}", headers=AUTH) as resp:
        first = await resp.json()
    await poll(
        lambda: get_json(session, f"{api.url}/rest/executor/info/{job}"),
        lambda r: r[1]["status"] == "RUNNING",
        30,
    )
    async with session.post(f"{api.url}/rest/executor/cancel/{job}", headers=AUTH) as resp:
        assert resp.status == 200
    done = await finished_job(session, api.url, job)
    assert done["status"] == "CANCELED"
    async with session.post(f"{api.url}/rest/executor/create/{job}", headers=AUTH) as resp:
        anew = await resp.json()
    assert anew["status"] == "CREATED"
    assert anew["createTime"] >= first["createTime"]
    async with session.post(f"{api.url}/rest/executor/cancel/{job}", headers=AUTH) as resp:
        assert resp.status == 200
    assert (await finished_job(session, api.url, job))["status"] == "CANCELED"


def _bomb() -> bytes:
    # 80 MiB of zeros deflate to about 80 KiB: over the 64 MiB cap once unpacked.
    return make_zip({"executor_config.json": b"{}", "zeros": bytes(80 * 1024 * 1024)})


@pytest.mark.parametrize(
    ("archive", "expected"),
    [
        (lambda p: job_zip(SEED_CONFIG, **{f"../../../..{p}/slip.txt": b"x"}), "contains '..'"),
        (lambda p: job_zip(SEED_CONFIG, **{f"{p}/abs.txt": b"x"}), "is absolute"),
        (lambda p: make_zip({"executor_config.json": b"{}"}, links={"ln": p}), "symbolic link"),
        (lambda p: _bomb(), "bytes unpacked is more than"),
        (lambda p: b"not a zip at all", "not a zip archive"),
        (lambda p: make_zip({"other.json": b"{}"}), "no 'executor_config.json'"),
        (lambda p: job_zip({"cmd": "echo", "argz": []}), "argz"),
    ],
    ids=["zip-slip", "absolute", "symlink", "bomb", "not-zip", "no-config", "typo"],
)
async def test_hostile_and_bad_zips_are_refused(
    start_judge: StartJudge,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    archive: Any,
    expected: str,
) -> None:
    _, api = await start_judge(max_body_bytes=8 * 1024 * 1024)
    target = tmp_path / "target"
    target.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    [job] = await upload(session, api.url, "evil.zip", archive(str(target)))
    async with session.post(f"{api.url}/rest/executor/create/{job}", headers=AUTH) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert expected in body["error"]["message"], body
    assert (await get_json(session, f"{api.url}/rest/executor/info/{job}"))[0] == 404
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "blobs" not in p.parts)
    assert after == sorted(set(before) | {Path("data/judge.sqlite3"), *_db_files(tmp_path)})
    assert list(target.iterdir()) == []


def _db_files(tmp_path: Path) -> list[Path]:
    return [p.relative_to(tmp_path) for p in (tmp_path / "data").glob("judge.sqlite3*")]


async def test_tokens_are_required(start_judge: StartJudge, session: aiohttp.ClientSession) -> None:
    _, api = await start_judge()
    async with session.post(f"{api.url}/rest/blob/createFile/x.zip", data=b"x") as resp:
        assert resp.status == 401
    async with session.post(
        f"{api.url}/rest/blob/createFile/x.zip", data=b"x", headers={"X-Auth-Token": ALICE}
    ) as resp:
        assert resp.status == 200
    async with session.get(f"{api.url}/rest/executor/?token={ALICE}") as resp:
        assert resp.status == 200
        assert await resp.json() == {}
    async with session.get(f"{api.url}/rest/executor/info/{'0' * 40}", headers=AUTH) as resp:
        assert resp.status == 404
    async with session.post(f"{api.url}/rest/executor/create/{'0' * 40}", headers=AUTH) as resp:
        assert resp.status == 404
