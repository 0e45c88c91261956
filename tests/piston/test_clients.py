"""Piston's own clients against a real judge, unchanged: npm ``piston-client`` 1.0.2 run by node
(``tests/piston/harness.mjs``; it sends no token, so the judge lets anonymous clients in) and
PyPI ``aiopyston`` 1.2.1 run by Python (``tests/piston/harness_aiopyston.py``; it sends its key
as the bare ``Authorization`` value, at the public instance's ``/api/v2/piston/`` prefix).
``make piston-deps`` installs the npm package (``npm ci``)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import StartJudge
from tests.service.support import ALICE

pytestmark = pytest.mark.docker

HERE = Path(__file__).resolve().parent


async def run(*argv: str, cwd: Path = HERE) -> dict[str, Any]:
    """Run a harness; its one JSON line."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    report: dict[str, Any] = json.loads(out)
    return report


@pytest.fixture
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: npm piston-client cannot be run")
    if not (HERE / "node_modules" / "piston-client").is_dir():
        pytest.fail("npm piston-client is missing: run 'make piston-deps' (npm ci)")
    return node


async def test_npm_piston_client(
    start_judge: StartJudge, piston_env: Callable[..., None], node: str
) -> None:
    piston_env(anonymous=True)
    judge, _ = await start_judge(max_running=2)
    report = await run(node, str(HERE / "harness.mjs"), judge.url)
    languages = {r["language"] for r in report["runtimes"]}
    assert {"c", "c++", "python", "java", "javascript", "go", "rust", "bash"} <= languages
    hello = report["hello"]
    assert hello["language"] == "python"
    assert hello["run"]["stdout"] == "hello ['1', '2', '3']\n"  # the client's default args
    full = report["full"]
    assert full["compile"]["code"] == 0
    assert full["run"]["stdout"] == "42 x\n"
    assert report["compileError"]["run"] == report["compileError"]["compile"]
    assert report["compileError"]["compile"]["code"] != 0
    assert report["timeout"]["run"]["status"] == "TO"
    assert report["unknown"] == {"message": "version is required as a string"}


async def test_aiopyston(start_judge: StartJudge) -> None:
    judge, _ = await start_judge(max_running=2)
    base = f"{judge.url}/api/v2/piston/"
    report = await run(sys.executable, str(HERE / "harness_aiopyston.py"), base, ALICE, "wrong")
    assert "python" in report["languages"]
    assert report["py_runtimes"] == ["python"]
    assert report["hello"]["str"] == "hello\n"
    assert report["hello"]["success"] is True
    pinned = report["pinned"]
    assert pinned["version"].startswith("3.")
    assert pinned["run"]["stdout"] == "['a', 'b']\n"
    assert report["cpp"]["str"] == "42\n"
    assert report["cpp"]["compile"] == 0
    assert report["unknown"] == "cobol-* runtime is unknown"
    assert json.loads(report["wrong_token"]) == {"message": "unknown or revoked token"}
