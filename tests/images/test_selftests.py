"""Every language image proves itself: its ``images/<name>/selftest.json`` runs clean.

Each self-test is a mission that compiles (or syntax-checks) a hello world and an A+B program,
runs them under the default limits and compares their output with ``diff``/``cmp``. It runs
through ``run_mission`` on the real engine with ``judge/<name>`` as the default image, and every
execute must end with status "". A missing image fails the test (CI builds them all) unless
``JUDGE_SKIP_MISSING_IMAGES=1`` is set, which skips it instead.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.mission import parse_mission
from orchestrator.netpolicy import make_connector
from orchestrator.run.runner import MissionDeps, run_mission
from orchestrator.sandbox.sandbox import SandboxRuntime

pytestmark = pytest.mark.docker

IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
# The images the project ships; any other images/<name>/selftest.json (a custom image) runs too.
SHIPPED = ("cpp", "python3", "java", "node", "go", "rust")
SELFTESTS = sorted(p.parent.name for p in IMAGES_DIR.glob("*/selftest.json"))
SKIP_MISSING = os.environ.get("JUDGE_SKIP_MISSING_IMAGES") == "1"
# Private builds (e.g. a branch's supervisor): JUDGE_TEST_IMAGE_PREFIX=i14/ tests i14/<name>.
PREFIX = os.environ.get("JUDGE_TEST_IMAGE_PREFIX", "judge/")


def load_selftest(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((IMAGES_DIR / name / "selftest.json").read_text())
    return doc


def executes(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every execute entry of a mission result with where it ran (``prepare[0]``, ...)."""
    found = [(f"prepare[{i}]", e) for i, e in enumerate(result["prepare"]["execute"])]
    for t, task in enumerate(result["task"]):
        found += [(f"task[{t}][{i}]", e) for i, e in enumerate(task["execute"])]
    found += [(f"final[{i}]", e) for i, e in enumerate(result["final"]["execute"])]
    return found


def decoded(record: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in record.items()}


def report(entries: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per execute: where, name, meta; the records of those that failed."""
    lines = []
    for where, entry in entries:
        meta = entry["meta"]
        lines.append(f"{where} {entry['name']!r}: {json.dumps(meta)}")
        if meta["status"]:
            lines.append(f"    record: {decoded(entry['record'])}")
    return "\n".join(lines)


def test_every_language_image_has_a_selftest() -> None:
    """Each sandbox image directory but base and default carries a self-test that is a valid
    mission (``server`` is the judge server's own image, not a sandbox)."""
    dirs = {p.parent.name for p in IMAGES_DIR.glob("*/Dockerfile")} - {"base", "default", "server"}
    assert set(SHIPPED) <= dirs
    for name in sorted(dirs):
        assert (IMAGES_DIR / name / "selftest.json").is_file(), f"images/{name}/selftest.json"
        parse_mission(load_selftest(name))


@pytest.mark.parametrize("name", SELFTESTS)
async def test_selftest_passes(name: str, runtime: SandboxRuntime) -> None:
    image = f"{PREFIX}{name}"
    labels = await runtime.adapter.image_labels(image)
    if labels is None:
        if SKIP_MISSING:
            pytest.skip(
                f"{image} is not built (bash images/build.sh {name}); skipped because "
                "JUDGE_SKIP_MISSING_IMAGES=1"
            )
        pytest.fail(
            f"{image} is not built: run `make image NAME={name}` (or set "
            "JUDGE_SKIP_MISSING_IMAGES=1 to skip images that are not built)"
        )
    assert labels.get("judge.image") == name, labels

    mission = parse_mission(load_selftest(name))
    async with aiohttp.ClientSession(connector=make_connector(False)) as session:
        deps = MissionDeps(runtime=runtime, session=session, default_image=image)
        _, result = await run_mission(mission, deps)

    entries = executes(result)
    print(f"{image} self-test:\n{report(entries)}")
    assert entries, "the self-test ran nothing"
    failed = [(where, e) for where, e in entries if e["meta"]["status"] != ""]
    assert not failed, f"{image} self-test failed:\n{report(failed)}"
    toolchain = next(e for _, e in entries if e["name"] == "toolchain")
    assert decoded(toolchain["record"])["stdout"].strip(), "/opt/judge/toolchain is empty"
