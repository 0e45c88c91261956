"""``judge run|status|cancel|images`` against a real server, without a terminal."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_IMAGE
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, REPO, run, sleeper

pytestmark = pytest.mark.docker


async def cli(url: str, *args: str, token: str = ALICE) -> tuple[int, str, str]:
    env = {**os.environ, "JUDGE_SERVER": url, "JUDGE_TOKEN": token}
    env.pop("NO_COLOR", None)
    return await run(sys.executable, "-m", "judge_client.cli", *args, env=env)


async def test_run_wait_prints_the_result_plainly(start_judge: StartJudge) -> None:
    judge, _ = await start_judge()
    rc, out, err = await cli(judge.url, "run", "examples/hello.json", "--wait")
    assert rc == 0, err
    assert "\x1b" not in out  # no colours nor live line without a terminal
    lines = out.splitlines()
    assert lines[0].startswith("mission 1: ")
    assert "mission 1: done (runs: 1)" in lines
    assert "  OK  prepare[0] hello  (" in out
    assert "      | hello world" in lines
    assert lines[-1] == "1/1 executes OK"


async def test_run_json_and_status(start_judge: StartJudge) -> None:
    judge, api = await start_judge()
    rc, out, err = await cli(judge.url, "run", "examples/hello.json", "--wait", "--json")
    assert rc == 0, err
    body = json.loads(out)
    assert body["state"] == "done"
    assert body["mission_result"]["prepare"]["execute"][0]["record"]["stdout"] == (
        "aGVsbG8gd29ybGQK"
    )
    # Without 'return' the mission has no callback: the CLI invents none.
    assert "return" not in body["mission"]
    assert body["callback"]["state"] == "none"

    # --return-url and --image set those fields.
    argv = ["--return-url", "http://127.0.0.1:9/elsewhere", "--image", DEFAULT_IMAGE, "--json"]
    rc, out, err = await cli(judge.url, "run", "examples/hello.json", *argv)
    assert rc == 0, err
    assert json.loads(out)["msg"]["id"] == 2
    _, second = await api.get(2)
    assert second["mission"]["return"]["url"] == "http://127.0.0.1:9/elsewhere"
    assert second["mission"]["image"] == DEFAULT_IMAGE

    rc, out, err = await cli(judge.url, "status", "1", "--json")
    assert rc == 0, err
    assert json.loads(out)["mission_result"] == body["mission_result"]
    rc, out, err = await cli(judge.url, "status", "1")
    assert rc == 0, err
    assert out.startswith("mission 1: done (runs: 1)\n")


async def test_run_wait_polls_a_server_without_events(
    start_judge: StartJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a server without the event stream (404), --wait polls instead."""
    from service.api import missions as routes

    asked = []

    async def missing(request: object) -> None:
        asked.append(request)
        raise routes.ApiError(404, "not_found", "no such route")

    # Routes are bound when the app is made: patch first.
    monkeypatch.setattr(routes, "mission_events", missing)
    judge, _ = await start_judge()
    rc, out, err = await cli(judge.url, "run", "examples/hello.json", "--wait")
    assert rc == 0, err
    assert len(asked) == 1
    assert out.splitlines()[-1] == "1/1 executes OK"


async def test_run_without_wait_then_cancel(start_judge: StartJudge, tmp_path: Path) -> None:
    judge, api = await start_judge()
    mission = tmp_path / "sleep.json"
    mission.write_text(json.dumps(sleeper("http://127.0.0.1:9/", 30)))
    rc, out, err = await cli(judge.url, "run", str(mission))
    assert rc == 0, err
    assert out == "1\n"
    await api.wait_for(1, lambda b: b["state"] == "running")
    rc, out, err = await cli(judge.url, "cancel", "1")
    assert rc == 0, err
    assert out in ("mission 1: cancelling\n", "mission 1: cancelled\n")
    body = await api.wait_for(1, lambda b: b["state"] == "cancelled")
    assert body["mission_result"]["prepare"]["execute"][0]["meta"]["status"] != ""


async def test_errors(start_judge: StartJudge, tmp_path: Path) -> None:
    judge, _ = await start_judge()
    rc, _, err = await cli(judge.url, "run", "examples/hello.json", token="wrong")
    assert rc == 1
    assert "HTTP 401: unknown or revoked token" in err
    rc, _, err = await cli(judge.url, "status", "99")
    assert (rc, err) == (1, "judge: GET /api/missions/99: HTTP 404: no such mission (at id)\n")
    bad = tmp_path / "bad.json"
    bad.write_text('{"prepare": {"execute": [{"command": []}]}}')
    rc, _, err = await cli(judge.url, "run", str(bad))
    assert rc == 1
    assert "HTTP 400" in err
    assert "prepare.execute[0].command" in err
    rc, _, err = await cli(judge.url, "run", str(tmp_path / "missing.json"))
    assert rc == 2
    rc, _, err = await cli("http://127.0.0.1:9", "status", "1")
    assert rc == 1
    assert "cannot reach http://127.0.0.1:9" in err
    env = {k: v for k, v in os.environ.items() if k != "JUDGE_TOKEN"}
    rc, _, err = await run(sys.executable, "-m", "judge_client.cli", "status", "1", env=env)
    assert (rc, err) == (1, "judge: a token is required: --token or JUDGE_TOKEN\n")


async def test_images(start_judge: StartJudge) -> None:
    judge, _ = await start_judge()
    rc, out, err = await cli(judge.url, "images")
    assert rc == 0, err
    assert any(line.endswith("(default)") for line in out.splitlines())


async def test_on_a_terminal_verdicts_are_coloured(start_judge: StartJudge) -> None:
    judge, _ = await start_judge()
    env = {**os.environ, "JUDGE_SERVER": judge.url, "JUDGE_TOKEN": ALICE, "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "judge_client.cli",
            "run",
            "examples/limits.json",
            "--wait",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=slave,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        _, err = await proc.communicate()  # the output is small: the terminal buffers it
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode == 0, err.decode()
    out = b"".join(chunks).decode()
    assert "\x1b[33mTLE\x1b[0m prepare[0] endless loop" in out
    assert "\x1b[33mMLE\x1b[0m prepare[1] memory hog" in out
    assert "\x1b[31mRE \x1b[0m prepare[2] crash" in out
    assert "\r\x1b[2Kmission 1: " in out  # the live status line, rewritten in place
    # The progress bar follows the mission's events: n of N executes, verdicts so far.
    assert "[" + "#" * 20 + "] 3/3 executes  MLE 1 RE 1 TLE 1" in out
