"""Every route of the door over raw HTTP: Judge0's shapes for answers and errors."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import zipfile
from typing import Any

import pytest

from orchestrator.errors import EngineUnavailable
from service.frontdoors.judge0 import JUDGE0_DOOR, plan, wire
from service.keys import WORKERS
from tests.judge0.conftest import AUTH, BOB_AUTH, Judge0Http
from tests.service.support import ALICE

pytestmark = pytest.mark.docker

HELLO = {"source_code": "print('hello')", "language_id": 71}


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


async def test_authentication_as_judge0(j0: Any) -> None:
    _, api = j0
    for headers, params in [({}, {}), ({"X-Auth-Token": "wrong"}, {})]:
        status, body, _ = await api.call("GET", "/languages", headers=headers, params=params)
        assert (status, body) == (401, None)  # an empty body, as Judge0
    ok = [
        ({"X-Auth-Token": ALICE}, {}),
        ({}, {"X-Auth-Token": ALICE}),
        ({"Authorization": f"Bearer {ALICE}"}, {}),
    ]
    for headers, params in ok:
        status, _, _ = await api.call("GET", "/languages", headers=headers, params=params)
        assert status == 200


async def test_anonymous_clients_when_allowed(
    start_judge: Any, session: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("JUDGE_JUDGE0_ANONYMOUS", "true")
    judge, _ = await start_judge()
    api = Judge0Http(session, judge.url + "/judge0")
    status, body, _ = await api.call(
        "POST", "/submissions", headers={}, params={"wait": "true"}, json=HELLO
    )
    assert status == 201
    assert body["stdout"] == "hello\n"
    # A submission belongs to its tenant: the anonymous one is not Alice's.
    status, _, _ = await api.call("GET", f"/submissions/{body['token']}")
    assert status == 404
    status, _, _ = await api.call("GET", f"/submissions/{body['token']}", headers={})
    assert status == 200
    status, _, _ = await api.call("GET", "/languages", headers={"X-Auth-Token": "wrong"})
    assert status == 401


async def test_create_then_poll_with_the_default_fields(j0: Any) -> None:
    _, api = j0
    status, body, _ = await api.call("POST", "/submissions", json=HELLO)
    assert status == 201
    assert list(body) == ["token"]
    done = await api.wait_done(body["token"])
    assert done["status"] == {"id": 3, "description": "Accepted"}
    status, doc, _ = await api.call("GET", f"/submissions/{body['token']}")
    assert list(doc) == list(wire.DEFAULT_FIELDS)
    assert doc["stdout"] == "hello\n"
    assert isinstance(doc["time"], str)
    assert isinstance(doc["memory"], int)


async def test_wait_true_answers_the_whole_submission(j0: Any) -> None:
    _, api = j0
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true", "fields": "*"},
        json={**HELLO, "stdin": "in", "expected_output": "hello", "cpu_time_limit": 2},
    )
    assert status == 201
    assert list(body) == list(wire.AVAILABLE_FIELDS)
    assert body["status"]["id"] == 3
    assert body["language"]["id"] == 71
    assert body["cpu_time_limit"] == "2.0"
    assert body["wall_time_limit"] == "10.0"
    assert body["memory_limit"] == 128000
    assert body["number_of_runs"] == 1
    assert body["exit_code"] == 0
    assert body["exit_signal"] is None
    assert body["enable_network"] is False
    assert body["source_code"] == HELLO["source_code"]
    assert body["created_at"].endswith("Z")
    assert body["finished_at"].endswith("Z")


async def test_wait_true_during_an_engine_outage_answers_503_and_cancels_its_run(
    start_judge: Any, session: Any, monkeypatch: Any
) -> None:
    """``wait=true`` waits through the judge's shared synchronous wait: once the engine has not
    answered for JUDGE_JUDGE0_WAIT_OUTAGE_S the run is cancelled and the answer is 503 with
    Retry-After. The outage here is what the server sees of the engine (its probe fails); a
    real engine killed under the same wait: tests/faults/test_sync_requests.py."""
    monkeypatch.setenv("JUDGE_JUDGE0_WAIT_OUTAGE_S", "0.5")
    judge, missions = await start_judge()
    api = Judge0Http(session, judge.url + "/judge0")
    gate = judge.app[WORKERS].engine
    assert gate is not None

    async def engine_down() -> None:
        raise EngineUnavailable("connection refused")

    await gate.stop()  # no probe of the real engine under way or to come
    monkeypatch.setattr(gate, "_probe", engine_down)
    assert not await gate.check()
    async with asyncio.timeout(30):  # a wait that ignores the outage would wait forever
        status, body, headers = await api.call(
            "POST", "/submissions", params={"wait": "true"}, json=HELLO
        )
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    found = re.fullmatch(
        r"the Docker engine has not answered for \d+ s; mission (\d+) was cancelled, send it "
        r"again; submission ([0-9a-f-]{36})",
        body["error"],
    )
    assert found, body
    status, row = await missions.get(int(found.group(1)))
    assert status == 200
    assert row["state"] == "cancelled"
    status, sub, _ = await api.call("GET", f"/submissions/{found.group(2)}")
    assert status == 200
    assert sub["status"]["id"] not in (1, 2), sub  # ended, never to run


async def test_base64_in_and_out_exactly_as_judge0(j0: Any) -> None:
    _, api = j0
    source = "import sys\nsys.stdout.write(sys.stdin.read() * 30)"
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true", "base64_encoded": "true"},
        json={"source_code": b64(source), "stdin": b64("abc"), "language_id": 71},
    )
    assert status == 201
    assert body["stdout"] == wire.encode64(b"abc" * 30)
    assert body["stdout"].count("\n") == 2  # a line break after 60 characters and at the end
    assert body["stderr"] is None


async def test_output_that_is_not_utf8(j0: Any) -> None:
    _, api = j0
    source = "import sys\nsys.stdout.buffer.write(b'\\xff')"
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true"},
        json={"source_code": source, "language_id": 71},
    )
    assert status == 201
    assert body == {"token": body["token"], "error": wire.UTF8_ERROR}
    status, err, _ = await api.call("GET", f"/submissions/{body['token']}")
    assert (status, err) == (400, {"error": wire.UTF8_ERROR})
    status, ok, _ = await api.call(
        "GET", f"/submissions/{body['token']}", params={"base64_encoded": "true"}
    )
    assert status == 200
    assert ok["stdout"] == "/w==\n"
    # Valid UTF-8 beyond ASCII passes without base64 (Judge0 would refuse it).
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true"},
        json={"source_code": "print('héllo ✓')", "language_id": 71},
    )
    assert body["stdout"] == "héllo ✓\n"


async def test_field_errors_are_judge0s_422(j0: Any) -> None:
    _, api = j0
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        json={"source_code": "x", "language_id": 150000, "memory_limit": 1, "enable_network": True},
    )
    assert status == 422
    assert body == {
        "memory_limit": ["must be greater than or equal to 2048"],
        "language_id": ["language with id 150000 doesn't exist"],
        "enable_network": ["enabling network is not allowed"],
    }
    status, body, _ = await api.call("POST", "/submissions", json={"language_id": 71})
    assert (status, body) == (422, {"source_code": ["can't be blank"]})
    status, body, _ = await api.call(
        "POST", "/submissions", json={**HELLO, "callback_url": "ftp://x"}
    )
    assert (status, body) == (422, {"callback_url": ["must be an http or https URL"]})
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        json={"language_id": 89, "additional_files": b64(b"not a zip")},
    )
    assert status == 422
    assert list(body) == ["additional_files"]


async def test_bad_fields_and_bad_bodies(j0: Any) -> None:
    _, api = j0
    status, body, _ = await api.call(
        "POST", "/submissions", params={"fields": "stdout,nope"}, json=HELLO
    )
    assert (status, body) == (400, {"error": "invalid fields: [nope]"})
    status, body, _ = await api.call(
        "POST", "/submissions", data=b"{nope", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert status == 400
    assert "error" in body
    status, body, _ = await api.call("GET", "/nowhere")
    assert status == 404
    assert "error" in body


async def test_a_form_body_and_query_parameters_work_as_in_rails(j0: Any) -> None:
    _, api = j0
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true", "language_id": "71"},
        data={"source_code": "print(2)"},
    )
    assert status == 201
    assert body["stdout"] == "2\n"


async def test_batches(j0: Any) -> None:
    _, api = j0
    status, body, _ = await api.call("POST", "/submissions/batch", json={"submissions": []})
    assert (status, body) == (400, {"error": "there should be at least one submission in a batch"})
    status, body, _ = await api.call(
        "POST", "/submissions/batch", json={"submissions": [HELLO] * 21}
    )
    assert status == 400
    assert body == {"error": "number of submissions in a batch should be less than or equal to 20"}
    status, body, _ = await api.call(
        "POST", "/submissions/batch", json={"submissions": [{"language_id": 71}]}
    )
    assert (status, body) == (422, [{"source_code": ["can't be blank"]}])
    status, body, _ = await api.call(
        "POST",
        "/submissions/batch",
        json={"submissions": [HELLO, {"language_id": 71}, {**HELLO, "stdin": "x"}]},
    )
    assert status == 201
    assert body[1] == {"source_code": ["can't be blank"]}
    tokens = [body[0]["token"], body[2]["token"]]
    for token in tokens:
        await api.wait_done(token)
    status, got, _ = await api.call(
        "GET", "/submissions/batch", params={"tokens": ",".join([*tokens, "unknown"])}
    )
    assert status == 200
    assert [s and s["stdout"] for s in got["submissions"]] == ["hello\n", "hello\n", None]
    status, got, _ = await api.call("GET", "/submissions/batch", params={"tokens": ""})
    assert status == 400
    # Bob sees none of Alice's submissions.
    status, got, _ = await api.call(
        "GET", "/submissions/batch", headers=BOB_AUTH, params={"tokens": ",".join(tokens)}
    )
    assert got == {"submissions": [None, None]}


async def test_a_submission_is_visible_only_to_its_token(j0: Any) -> None:
    _, api = j0
    _, body, _ = await api.call("POST", "/submissions", params={"wait": "true"}, json=HELLO)
    token = body["token"]
    status, _, _ = await api.call("GET", f"/submissions/{token}", headers=BOB_AUTH)
    assert status == 404
    status, _, _ = await api.call("DELETE", f"/submissions/{token}", headers=BOB_AUTH)
    assert status == 404
    status, listed, _ = await api.call("GET", "/submissions", headers=BOB_AUTH)
    assert listed["submissions"] == []


async def test_listing_pages_the_callers_own(j0: Any) -> None:
    _, api = j0
    _, body, _ = await api.call("POST", "/submissions/batch", json={"submissions": [HELLO] * 3})
    for item in body:
        await api.wait_done(item["token"])
    status, page, _ = await api.call("GET", "/submissions", params={"per_page": "2"})
    assert status == 200
    assert page["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 2,
        "total_count": 3,
    }
    assert len(page["submissions"]) == 2
    _, page2, _ = await api.call("GET", "/submissions", params={"per_page": "2", "page": "2"})
    assert len(page2["submissions"]) == 1
    status, err, _ = await api.call("GET", "/submissions", params={"page": "0"})
    assert (status, err) == (400, {"error": "invalid page: 0"})


async def test_delete_a_finished_submission_not_a_queued_one(j0: Any) -> None:
    _, api = j0
    slow = {"source_code": "import time\ntime.sleep(3)", "language_id": 71}
    _, body, _ = await api.call("POST", "/submissions", json=slow)
    status, err, _ = await api.call("DELETE", f"/submissions/{body['token']}")
    assert status == 400
    assert err["error"] in (
        "submission cannot be deleted because its status is 1 (In Queue)",
        "submission cannot be deleted because its status is 2 (Processing)",
    )
    _, done, _ = await api.call("POST", "/submissions", params={"wait": "true"}, json=HELLO)
    status, gone, _ = await api.call("DELETE", f"/submissions/{done['token']}")
    assert status == 200
    assert gone["stdout"] == wire.encode64(b"hello\n")  # always base64, as Judge0
    status, _, _ = await api.call("GET", f"/submissions/{done['token']}")
    assert status == 404
    await api.wait_done(body["token"])


async def test_status_1_then_2_while_it_runs(j0: Any) -> None:
    _, api = j0
    _, body, _ = await api.call(
        "POST",
        "/submissions",
        json={"source_code": "import time\ntime.sleep(1.5)", "language_id": 71},
    )
    seen = []
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        _, doc, _ = await api.call("GET", f"/submissions/{body['token']}")
        if not seen or seen[-1] != doc["status"]["id"]:
            seen.append(doc["status"]["id"])
        if doc["status"]["id"] == 3:
            break
        await asyncio.sleep(0.02)
    # 1 while queued (maybe too short to see), 2 for the 1.5 s it runs, then 3.
    assert seen[-2:] == [2, 3]
    assert set(seen) <= {1, 2, 3}


async def test_information_routes(j0: Any) -> None:
    _, api = j0
    status, langs, _ = await api.call("GET", "/languages")
    ids = {lang["id"] for lang in langs}
    assert {43, 46, 48, 49, 50, 52, 53, 54, 60, 62, 63, 71, 73, 89} <= ids
    assert langs == sorted(langs, key=lambda x: (x["name"], x["id"]))
    assert set(langs[0]) == {"id", "name"}
    _, every, _ = await api.call("GET", "/languages/all")
    assert all(x["is_archived"] is False for x in every)
    status, one, _ = await api.call("GET", "/languages/62")
    assert set(one) == {"id", "name", "is_archived", "source_file", "compile_cmd", "run_cmd"}
    assert one["source_file"] == "Main.java"
    status, _, _ = await api.call("GET", "/languages/9999")
    assert status == 404
    _, statuses, _ = await api.call("GET", "/statuses")
    assert statuses == wire.statuses_doc()
    _, about, _ = await api.call("GET", "/about")
    assert about["version"] == "1.13.1"
    _, text, _ = await api.call("GET", "/version")
    assert text == "1.13.1"
    _, config, _ = await api.call("GET", "/config_info")
    assert len(config) == 39
    _, info, _ = await api.call("GET", "/system_info")
    assert "CPU(s)" in info
    _, workers, _ = await api.call("GET", "/workers")
    assert set(workers[0]) == {"queue", "size", "available", "idle", "working", "paused", "failed"}


async def test_a_multi_file_program_over_http(j0: Any) -> None:
    _, api = j0
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("run", 'python3 main.py "$@"')
        z.writestr("main.py", "import sys; print(sys.argv[1:])")
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true"},
        json={
            "language_id": 89,
            "additional_files": b64(buf.getvalue()),
            "command_line_arguments": "ignored",
        },
    )
    assert status == 201
    assert body["stdout"] == "[]\n"  # a project's run script takes no arguments (as Judge0)
    _, zipped, _ = await api.call(
        "GET", f"/submissions/{body['token']}", params={"fields": "additional_files"}
    )
    assert wire.decode64(zipped["additional_files"]) == buf.getvalue()


async def test_number_of_runs_and_redirected_stderr(j0: Any) -> None:
    _, api = j0
    source = "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)"
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true"},
        json={
            "source_code": source,
            "language_id": 71,
            "number_of_runs": 3,
            "redirect_stderr_to_stdout": True,
        },
    )
    assert status == 201
    assert body["stdout"] == "out\nerr\n"
    assert body["stderr"] is None


async def test_the_compile_cache_on_metrics(j0: Any, session: Any) -> None:
    judge, api = j0
    source = '#include <stdio.h>\nint main(void) { puts("m"); }'
    batch = [{"source_code": source, "language_id": 50}] * 3
    _, created, _ = await api.call("POST", "/submissions/batch", json={"submissions": batch})
    for item in created:
        await api.wait_done(item["token"])
    async with session.get(judge.url + "/metrics") as resp:
        text = await resp.text()
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("judge_judge0_compile_cache")
    }
    assert values["judge_judge0_compile_cache_misses_total"] == 1
    assert values["judge_judge0_compile_cache_hits_total"] == 2
    assert values["judge_judge0_compile_cache_entries"] == 1


@pytest.mark.parametrize(
    ("out_bytes", "err_bytes", "redirect", "read_back"),
    [
        (4095, 10, False, False),  # both whole in their records
        (4096, 0, False, True),  # stdout filled its record: it may be longer
        (3, 5000, False, True),
        (100_000, 0, False, True),
        (4000, 200, True, True),  # stdout and stderr in one file, over a record
        (3000, 200, True, False),
    ],
)
async def test_outputs_are_whole_from_the_records_or_read_back(
    j0: Any,
    monkeypatch: pytest.MonkeyPatch,
    out_bytes: int,
    err_bytes: int,
    redirect: bool,
    read_back: bool,
) -> None:
    judge, api = j0
    submissions = judge.app[JUDGE0_DOOR].submissions
    seen: list[tuple[bool, bool]] = []
    judged = submissions.finished

    async def spy(mission_id: int, state: str, result: Any, mio: Any) -> None:
        seen.append((mio.recorded is not None, plan.OUT_DIR in mio.collected))
        await judged(mission_id, state, result, mio)

    monkeypatch.setattr(submissions, "finished", spy)
    source = (
        "import sys\n"
        f"sys.stdout.write('o' * {out_bytes - 1} + '\\n'); sys.stdout.flush()\n"
        f"sys.stderr.write('e' * {err_bytes})\n"
    )
    status, body, _ = await api.call(
        "POST",
        "/submissions",
        params={"wait": "true"},
        json={"source_code": source, "language_id": 71, "redirect_stderr_to_stdout": redirect},
    )
    assert status == 201, body
    out = "o" * (out_bytes - 1) + "\n"
    err = "e" * err_bytes
    if redirect:
        assert (body["stdout"], body["stderr"]) == (out + err, None)
    else:
        assert (body["stdout"], body["stderr"]) == (out, err or None)
    assert body["status"]["id"] == 3
    assert seen == [(not read_back, read_back)]
