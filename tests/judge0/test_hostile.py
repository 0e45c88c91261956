"""Hostile requests get Judge0's error shape and leave nothing behind; the judge goes on."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import pytest

from tests.frontdoors.conftest import make_zip
from tests.judge0.conftest import AUTH, Judge0Http

pytestmark = pytest.mark.docker

HELLO = {"source_code": "print('hello')", "language_id": 71}
JSON = {**AUTH, "Content-Type": "application/json"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bomb() -> bytes:
    """A small zip that unpacks to 64 MiB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros", b"\0" * (64 * 1024 * 1024))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("archive", "words"),
    [
        (b"not a zip", "not a zip archive"),
        (make_zip({"../escape": b"x", "run": b"true"}), ".."),
        (make_zip({"run": b"true"}, links={"passwd": "/etc/passwd"}), "symbolic link"),
        (None, "bytes"),
        (make_zip({".j0/artifact.tar": b"x", "run": b"true"}), "the judge's own"),
    ],
)
async def test_bad_additional_files_are_field_errors(
    j0: Any, archive: bytes | None, words: str
) -> None:
    _, api = j0
    data = bomb() if archive is None else archive
    status, body, _ = await api.call(
        "POST", "/submissions", json={**HELLO, "additional_files": b64(data)}
    )
    assert status == 422
    assert list(body) == ["additional_files"]
    assert words in body["additional_files"][0]


async def test_refused_requests_leave_nothing_and_the_judge_goes_on(j0: Any) -> None:
    _, api = j0
    refused = [
        ("POST", "/submissions", {"json": {"language_id": 71}}),
        ("POST", "/submissions", {"json": {**HELLO, "enable_network": True}}),
        ("POST", "/submissions", {"data": b"\xff\xfe{", "headers": JSON}),
        ("POST", "/submissions", {"json": [1, 2, 3]}),
        ("POST", "/submissions/batch", {"json": {"submissions": "nope"}}),
        ("POST", "/submissions/batch", {"json": {"submissions": [[1], None, 7]}}),
        ("POST", "/submissions", {"json": {**HELLO, "memory_limit": 10**30}}),
        (
            "POST",
            "/submissions",
            {"data": b'{"source_code": "x", "language_id": NaN}', "headers": JSON},
        ),
        ("GET", "/submissions/batch", {"params": {"tokens": ",".join(["x"] * 21)}}),
        ("GET", "/submissions", {"params": {"per_page": "-1"}}),
        ("GET", "/submissions/not-a-token", {}),
    ]
    for method, path, kw in refused:
        status, body, _ = await api.call(method, path, **kw)
        assert 400 <= status < 500, (path, kw, status, body)
        assert isinstance(body, dict | list), body
    _, listed, _ = await api.call("GET", "/submissions")
    assert listed["meta"]["total_count"] == 0
    status, done, _ = await api.call("POST", "/submissions", params={"wait": "true"}, json=HELLO)
    assert status == 201
    assert done["stdout"] == "hello\n"


async def test_queue_full_and_rate_limited_answers_are_judge0_errors(
    start_judge: Any, session: Any
) -> None:
    judge, _ = await start_judge(max_running=1, max_queued=1, rate_limit=3)
    api = Judge0Http(session, judge.url + "/judge0")
    slow = {"source_code": "import time\ntime.sleep(2)", "language_id": 71}
    answers = [await api.call("POST", "/submissions", json=slow) for _ in range(4)]
    statuses = [status for status, _, _ in answers]
    assert 503 in statuses
    full = answers[statuses.index(503)]
    assert full[1] == {"error": "queue is full"}
    assert int(full[2]["Retry-After"]) >= 1
    status, body, headers = answers[3]
    assert status == 429
    assert set(body) == {"error"}
    assert int(headers["Retry-After"]) >= 1
    for status, created, _ in answers:
        if status == 201:
            await api.wait_done(created["token"])
