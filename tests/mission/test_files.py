"""Downloads: a failed file makes that stage's executes SE naming the file; later stages run."""

from __future__ import annotations

import pytest

from orchestrator.run.runner import MissionDeps
from tests.mission.helpers import FileServer, assert_ok, b64, mission, run, sh, stdout_of

pytestmark = pytest.mark.docker


async def test_404_fails_only_its_own_stage(deps: MissionDeps, file_server: FileServer) -> None:
    file_server.files["ok.txt"] = b"fine\n"
    data = mission(
        prepare={
            "file": {"ok.txt": file_server.url("ok.txt"), "gone.txt": file_server.url("gone")},
            "execute": [sh("cat ok.txt", name="p0"), sh("true", name="p1")],
        },
        tasks={
            "task": [
                {"file": {"t.txt": file_server.url("missing")}},
                {"file": {"t.txt": "data:,task%201"}},
            ],
            "execute": [{"command": ["cat", "t.txt"], "stdout": "t__TASK_ID__.out"}],
        },
        final={
            "file": {"f.txt": "data:,final"},
            "execute": [sh("cat f.txt; test ! -e gone.txt", stdout="final.out")],
        },
    )
    _, result = await run(deps, data)

    prepare = result["prepare"]
    assert prepare["file"] == {
        "ok.txt": {"status": 200, "content": b64("fine\n")},
        "gone.txt": {"status": 404, "content": b64(FileServer.NOT_FOUND)},
    }
    assert [e["name"] for e in prepare["execute"]] == ["p0", "p1"]
    for entry in prepare["execute"]:
        meta = entry["meta"]
        assert meta["status"] == "SE"
        assert "file 'gone.txt' could not be downloaded" in meta["message"]
        assert "HTTP 404" in meta["message"]
        assert "ok.txt" not in meta["message"]

    failed_task, good_task = result["task"]
    assert failed_task["file"] == {"t.txt": {"status": 404, "content": b64(FileServer.NOT_FOUND)}}
    assert failed_task["execute"][0]["meta"]["status"] == "SE"
    assert "file 't.txt'" in failed_task["execute"][0]["meta"]["message"]
    assert good_task["file"] == {"t.txt": {"status": 200, "content": b64("task 1")}}
    assert_ok(good_task["execute"][0])
    assert stdout_of(good_task["execute"][0]) == "task 1"

    assert result["final"]["file"] == {"f.txt": {"status": 200, "content": b64("final")}}
    assert_ok(result["final"]["execute"][0])
    assert stdout_of(result["final"]["execute"][0]) == "final"
    assert sorted(file_server.hits) == ["gone", "missing", "ok.txt"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("data:;base64,@@@@", "bad data: URL: invalid base64"),
        ("data:,100%zz", "bad data: URL: '%' at position 3"),
    ],
)
async def test_bad_data_url_is_se_naming_the_file(
    deps: MissionDeps, url: str, problem: str
) -> None:
    data = mission(
        prepare={"file": {"x.bin": url}, "execute": [sh("cat x.bin")]},
        final={"execute": [sh("echo still here", stdout="final.out")]},
    )
    _, result = await run(deps, data)
    assert result["prepare"]["file"] == {"x.bin": {"status": 0, "content": ""}}
    meta = result["prepare"]["execute"][0]["meta"]
    assert meta["status"] == "SE"
    assert meta["message"].startswith("file 'x.bin' could not be downloaded: ")
    assert problem in meta["message"]
    assert_ok(result["final"]["execute"][0])
    assert stdout_of(result["final"]["execute"][0]) == "still here\n"
