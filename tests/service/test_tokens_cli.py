"""``judge tokens add|list|revoke`` round trip, and the tokens it makes on the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.service.conftest import StartJudge
from tests.service.support import run


async def cli(data_dir: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "JUDGE_DATA_DIR": str(data_dir)}
    return await run(sys.executable, "-m", "judge_client.cli", "tokens", *args, env=env)


@pytest.mark.docker  # the server needs the engine to start
async def test_tokens_round_trip_and_the_api(start_judge: StartJudge, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rc, out, err = await cli(data_dir, "add", "ci")
    assert rc == 0, err
    token = out.strip()
    assert len(token) >= 24
    assert "shown only once" in err
    rc, out, err = await cli(data_dir, "add", "ci")
    assert rc == 1
    assert "exists" in err

    rc, out, _ = await cli(data_dir, "list")
    assert rc == 0
    assert out.startswith("ci\tcreated ")
    assert out.rstrip().endswith("active")
    assert token not in out
    # Stored hashed: the token itself is nowhere in the database files.
    for path in data_dir.iterdir():
        assert token.encode() not in path.read_bytes(), path

    _, api = await start_judge(tokens=(), data_dir=data_dir)
    # Authenticated: a mission that does not exist is 404, and a bad mission is 400 (not 401).
    assert (await api.get(1, token=token))[0] == 404
    status, body, _ = await api.submit('{"return": {}}', token=token)
    assert (status, body["error"]["path"]) == (400, "mission.return.url")
    status, body, _ = await api.submit('{"return": {}}', token=token, how="bearer")
    assert status == 400

    rc, _, err = await cli(data_dir, "revoke", "ci")
    assert rc == 0, err
    rc, out, _ = await cli(data_dir, "list")
    assert "revoked" in out
    rc, _, err = await cli(data_dir, "revoke", "ci")
    assert rc == 1
    assert "no active token" in err

    # The running server sees the revocation at once.
    status, body = await api.get(1, token=token)
    assert (status, body["error"]["message"]) == (401, "unknown or revoked token")
    status, _, _ = await api.submit("{}", token=token)
    assert status == 401


async def test_cli_usage_errors(tmp_path: Path) -> None:
    rc, _, err = await cli(tmp_path, "frobnicate")
    assert rc == 2
    assert "invalid choice" in err
    rc, _, err = await run(
        sys.executable,
        "-m",
        "judge_client.cli",
        "tokens",
        "list",
        env={**os.environ, "JUDGE_DATA_DIR": str(tmp_path), "JUDGE_PORT": "x"},
    )
    assert rc == 2
    assert "JUDGE_PORT" in err
