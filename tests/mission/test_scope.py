"""Scoped executes: imports arrive under their last component, exports go back to the same path;
nothing is created on the way, and what cannot be moved is that execute's SE."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.run.runner import MissionDeps
from tests.mission.helpers import assert_ok, mission, run, sh, stdout_of

pytestmark = pytest.mark.docker

TREE = "mkdir -p a/b && echo c > a/b/c && echo d > a/d"
LIST = "find . -mindepth 1 | sort"


def scoped(script: str, imports: list[str], exports: list[str], **fields: Any) -> dict[str, Any]:
    scope = {"enable": True, "import": imports, "export": exports}
    return sh(script, scope=scope, **fields)


async def test_imports_arrive_by_last_component_and_exports_return(deps: MissionDeps) -> None:
    data = mission(
        prepare={
            "execute": [
                sh(TREE),
                scoped(LIST, ["a/b"], [], stdout="list.txt"),
                scoped(LIST, ["a"], [], stdout="list.txt"),
                scoped("cat c d", ["a/b/c", "a/d"], [], stdout="both.txt"),
                scoped(
                    "echo new > a/b/new.txt && mkdir -p res/sub && echo r > res/sub/r",
                    ["a"],
                    ["a/b/new.txt", "res"],
                ),
                sh("cat a/b/new.txt res/sub/r && find a res | sort", stdout="check.txt"),
            ]
        }
    )
    _, result = await run(deps, data)
    entries = result["prepare"]["execute"]
    for entry in entries:
        assert_ok(entry)
    assert stdout_of(entries[1]) == "./b\n./b/c\n./list.txt\n"
    assert stdout_of(entries[2]) == "./a\n./a/b\n./a/b/c\n./a/d\n./list.txt\n"
    assert stdout_of(entries[3]) == "c\nd\n"
    assert stdout_of(entries[5]) == (
        "new\nr\n" + "a\na/b\na/b/c\na/b/new.txt\na/d\nres\nres/sub\nres/sub/r\n"
    )


async def test_missing_import_is_se_and_the_command_does_not_run(deps: MissionDeps) -> None:
    data = mission(
        prepare={
            "execute": [
                scoped("echo ran > ran.txt", ["nope.txt"], ["ran.txt"]),
                sh("test ! -e ran.txt"),
            ]
        }
    )
    _, result = await run(deps, data)
    first, after = result["prepare"]["execute"]
    assert first["meta"]["status"] == "SE"
    assert first["meta"]["message"] == "import 'nope.txt': not found"
    assert first["record"] == {"stdout": "", "stderr": ""}
    assert_ok(after)


async def test_export_problems_are_se_and_create_nothing(deps: MissionDeps) -> None:
    data = mission(
        prepare={
            "execute": [
                # The parent directory of the export does not exist in the current sandbox.
                scoped("mkdir d && echo x > d/f", [], ["d/f"]),
                # The export does not exist in the scoped sandbox.
                scoped("true", [], ["never.txt"]),
                # A verdict of the command is kept; the export problem is added to its message.
                scoped("exit 3", [], ["never.txt"]),
                # The parent is a file in the current sandbox: the figures of the run are kept.
                sh("echo file > f"),
                scoped("mkdir f && echo x > f/x", [], ["f/x"]),
                sh('test ! -e d && test ! -e never.txt && test "$(cat f)" = file'),
            ]
        }
    )
    _, result = await run(deps, data)
    no_parent, missing, failed, make_file, file_parent, after = result["prepare"]["execute"]
    assert no_parent["meta"]["status"] == "SE"
    assert no_parent["meta"]["message"] == (
        "export 'd/f': directory 'd' does not exist in the sandbox"
    )
    assert missing["meta"]["status"] == "SE"
    assert missing["meta"]["message"] == "export 'never.txt': not found in the scoped sandbox"
    assert failed["meta"]["status"] == "RE"
    assert failed["meta"]["message"] == (
        "exited with code 3; export 'never.txt': not found in the scoped sandbox"
    )
    assert_ok(make_file)
    assert file_parent["meta"]["status"] == "SE"
    assert file_parent["meta"]["message"].startswith("export 'f/x': ")
    assert file_parent["meta"]["real-time-usage"] > 0
    assert_ok(after)


async def test_links_are_never_exported_or_imported(deps: MissionDeps) -> None:
    data = mission(
        prepare={
            "execute": [
                # A directory holding a file and a symbolic link: nothing of it is copied.
                scoped(
                    "mkdir out && echo secret > out/f && ln -s /etc/passwd out/link", [], ["out"]
                ),
                # A symbolic link exported by its own name.
                scoped("ln -s /etc/hostname l", [], ["l"]),
                sh("test ! -e out && test ! -e l && test ! -L l"),
                # A link made in the current sandbox is not imported either.
                sh("mkdir dir && echo x > dir/x && ln -s x dir/y"),
                scoped("echo ran > ran.txt", ["dir"], ["ran.txt"]),
                sh("test ! -e ran.txt"),
            ]
        }
    )
    _, result = await run(deps, data)
    out_dir, link, after, make_dir, imported, after_import = result["prepare"]["execute"]
    assert out_dir["meta"]["status"] == "SE"
    assert out_dir["meta"]["message"] == (
        "export 'out': 'out/link' is a link (to '/etc/passwd'); links are not copied"
    )
    assert link["meta"]["status"] == "SE"
    assert "'l' is a link" in link["meta"]["message"]
    assert_ok(after)
    assert_ok(make_dir)
    assert imported["meta"]["status"] == "SE"
    assert imported["meta"]["message"] == (
        "import 'dir': 'dir/y' is a link (to 'x'); links are not copied"
    )
    assert_ok(after_import)
