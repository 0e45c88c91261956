"""A mission's files in flight stay within its memory budget, however many it lists."""

from __future__ import annotations

import dataclasses
import hashlib
import tracemalloc

import pytest

from orchestrator.run.runner import MissionDeps
from tests.mission.helpers import FileServer, assert_ok, mission, run, sh, stdout_of

pytestmark = pytest.mark.docker

MiB = 1 << 20


async def test_many_files_pass_through_a_small_budget(
    deps: MissionDeps, file_server: FileServer
) -> None:
    files = {f"f{i:02}": bytes([i]) * (2 * MiB) for i in range(24)}  # 48 MiB in all
    file_server.files.update(files)
    digest = hashlib.sha256(b"".join(files[n] for n in sorted(files))).hexdigest()
    data = mission(
        prepare={
            "file": {name: file_server.url(name) for name in files},
            "execute": [sh("cat f* | sha256sum | cut -c1-64", stdout="sum.txt")],
        }
    )
    small = dataclasses.replace(deps, files_budget_bytes=8 * MiB)
    tracemalloc.start()
    try:
        _, result = await run(small, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (summed,) = result["prepare"]["execute"]
    assert_ok(summed)
    assert stdout_of(summed) == digest + "\n"
    assert all(f["status"] == 200 for f in result["prepare"]["file"].values())
    print(f"peak traced memory: {peak / MiB:.1f} MiB for 48 MiB of files")
    assert peak < 32 * MiB  # without the budget: every file at once, and the archive of them


async def test_nested_imports_cannot_multiply_a_big_file(deps: MissionDeps) -> None:
    scoped = {"enable": True, "import": ["a", "a/b", "a/b/c"], "export": []}
    data = mission(
        prepare={
            "execute": [
                sh("mkdir -p a/b/c && head -c 12M /dev/zero > a/b/c/f"),
                sh("ls -R", scope=scoped),
                sh("ls", scope={**scoped, "import": ["a/b/c"]}),
            ]
        }
    )
    _, result = await run(dataclasses.replace(deps, files_budget_bytes=16 * MiB), data)
    made, nested, single = result["prepare"]["execute"]
    assert_ok(made)
    assert nested["meta"]["status"] == "SE"
    assert nested["meta"]["message"] == (
        "import 'a/b': the imports of this execute come to more than 16777216 bytes, "
        "the mission's file budget"
    )
    assert_ok(single)


async def test_an_export_over_half_the_budget_is_refused(deps: MissionDeps) -> None:
    data = mission(
        prepare={
            "execute": [
                sh("head -c 12M /dev/zero > big", scope={"enable": True, "export": ["big"]}),
                sh("head -c 4M /dev/zero > ok", scope={"enable": True, "export": ["ok"]}),
                sh("test ! -e big && test -s ok"),
            ]
        }
    )
    _, result = await run(dataclasses.replace(deps, files_budget_bytes=16 * MiB), data)
    big, ok, check = result["prepare"]["execute"]
    assert big["meta"]["status"] == "SE"
    assert big["meta"]["message"].startswith("export 'big' is larger than ")
    assert_ok(ok)
    assert_ok(check)
