"""``examples/*.json``: up to date with ``examples/build.py``, and each gives the verdicts it
promises when run with ``judge run --wait`` on a real server."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
from types import ModuleType

import pytest

from tests.service.conftest import StartJudge
from tests.service.support import ALICE, REPO, run


def _examples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("judge_examples", REPO / "examples/build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLES = _examples()


def statuses(result: dict[str, object]) -> list[str]:
    entries = list(result["prepare"]["execute"])  # type: ignore[index]
    for task in result["task"]:  # type: ignore[attr-defined]
        entries += task["execute"]
    return [e["meta"]["status"] for e in entries]


@pytest.mark.parametrize("name", sorted(EXAMPLES.EXAMPLES))
def test_the_json_files_are_up_to_date(name: str) -> None:
    mission, _ = EXAMPLES.EXAMPLES[name]
    assert (REPO / "examples" / f"{name}.json").read_text() == EXAMPLES.render(mission), (
        "run python3 examples/build.py"
    )


@pytest.mark.docker
async def test_every_example_gives_its_verdicts(start_judge: StartJudge) -> None:
    judge, _ = await start_judge(max_running=4)
    env = {**os.environ, "JUDGE_SERVER": judge.url, "JUDGE_TOKEN": ALICE}
    for name in sorted(EXAMPLES.EXAMPLES):
        _, expected = EXAMPLES.EXAMPLES[name]
        argv = ["run", f"examples/{name}.json", "--wait", "--json"]
        rc, out, err = await run(sys.executable, "-m", "judge_client.cli", *argv, env=env)
        assert rc == 0, f"{name}: {err}"
        body = json.loads(out)
        assert body["state"] == "done", name
        assert statuses(body["mission_result"]) == expected, f"{name}: {out}"
        if name == "hello":
            record = body["mission_result"]["prepare"]["execute"][0]["record"]
            assert record["stdout"] == "aGVsbG8gd29ybGQK"
        if name == "interactive":
            for task in body["mission_result"]["task"]:
                inter = task["execute"][0]["interactor"]
                assert inter["meta"]["status"] == "", f"{name}: {out}"
                assert base64.b64decode(inter["record"]["stderr"]).startswith(b"ok: found ")
        if name == "python-grader":
            record = body["mission_result"]["prepare"]["execute"][1]["record"]
            assert '{"score": 4, "out_of": 5}' in base64.b64decode(record["stdout"]).decode()
