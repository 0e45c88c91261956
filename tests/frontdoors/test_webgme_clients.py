"""WebGME's own clients against a real judge: ``BlobClient``, ``Artifact`` and ``ExecutorClient``
from the npm package ``webgme-engine``, loaded unchanged by ``tests/webgme/harness.js``.

The harness saves job definitions as artifacts (and the seed's zip), creates jobs, polls them as
WebGME's ExecutorPlugin does (with output segments while a job runs), reads results back with
``getArtifact``/``getSubObject``, cancels a job, runs a failing one, and checks that a second
token sees none of it. ``make webgme-deps`` installs its packages (``npm ci``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.frontdoors.conftest import SEED_CONFIG, job_zip
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, BOB

pytestmark = pytest.mark.docker

HARNESS_DIR = Path(__file__).resolve().parent.parent / "webgme"


@pytest.fixture
def node() -> str:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: WebGME's clients cannot be run")
    if not (HARNESS_DIR / "node_modules" / "webgme-engine").is_dir():
        pytest.fail("WebGME's npm packages are missing: run 'make webgme-deps' (npm ci)")
    return node


async def test_webgme_clients_drive_the_executor(
    start_judge: StartJudge, node: str, tmp_path: Path
) -> None:
    _, api = await start_judge(max_running=4)
    seed_zip = tmp_path / "jobdefinition.zip"
    seed_zip.write_bytes(job_zip(SEED_CONFIG))
    proc = await asyncio.create_subprocess_exec(
        node,
        str(HARNESS_DIR / "harness.js"),
        api.url,
        ALICE,
        BOB,
        str(seed_zip),
        cwd=HARNESS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 100)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    report = json.loads(out)
    assert report["artifact"]["info"]["status"] == "SUCCESS"
    assert report["artifact"]["segmentsWhileRunning"] >= 2
    assert report["seed"]["info"]["status"] == "SUCCESS"
    assert report["cancelled"]["info"]["status"] == "CANCELED"
    assert report["failing"]["info"]["status"] == "FAILED_TO_EXECUTE"
    assert report["listed"] == 4
