"""The ``judge`` client is a client: it loads neither the server's database nor its settings."""

from __future__ import annotations

import subprocess
import sys

from tests.service.support import REPO


def test_the_client_does_not_import_the_server() -> None:
    code = (
        "import sys, judge_client.cli\n"
        "server = [m for m in sys.modules if m.startswith(('service.', 'sqlite3', 'aiohttp',"
        " 'pydantic', 'docker'))]\n"
        "print(sorted(m for m in server if m != 'judge_client.cli'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_tokens_are_an_admin_command_that_loads_the_database(tmp_path: object) -> None:
    env = {"JUDGE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    got = subprocess.run(
        [sys.executable, "-m", "judge_client.cli", "tokens", "list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert (got.returncode, got.stdout) == (0, "")
    got = subprocess.run(
        [sys.executable, "-m", "service.admin", "tokens", "add", "ci"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert got.returncode == 0, got.stderr
    assert len(got.stdout.strip()) >= 24
