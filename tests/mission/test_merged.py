"""The ``merged`` extension end to end on the real engine: a file of both streams in write
order, reported as ``record.merged``, in a task with macros and in a scoped execute."""

from __future__ import annotations

import base64

import pytest

from orchestrator.run.runner import MissionDeps
from tests.mission.helpers import assert_ok, mission, run, sh

pytestmark = pytest.mark.docker

# Turns between the streams; before switching, waits until the pipe it wrote to is read
# (tests/sandbox/test_merged.py says why).
TURNS = (
    "import fcntl, struct, sys, termios, time\n"
    "for i in range(4):\n"
    "    s = (sys.stdout, sys.stderr)[i % 2]\n"
    "    s.write(f'{i}'); s.flush()\n"
    "    while struct.unpack('i', fcntl.ioctl(s.fileno(), termios.FIONREAD, b'0000'))[0]:\n"
    "        time.sleep(0.0005)\n"
)


def merged(entry: dict[str, object]) -> bytes:
    record = entry["record"]
    assert isinstance(record, dict)
    return base64.b64decode(record["merged"])


async def test_merged_files_in_prepare_tasks_and_scopes(deps: MissionDeps) -> None:
    turns = {"command": ["python3", "-c", TURNS], "stdout": "o", "stderr": "e"}
    normalised, result = await run(
        deps,
        mission(
            prepare={
                "execute": [
                    {**turns, "merged": "both"},
                    {**turns, "merged": "cut", "record": {"merged": 3}},
                    {**turns},
                    sh("cat both", stdout="again"),
                ]
            },
            tasks={
                "task": [{"macro": {"WHO": "first"}}, {"macro": {"WHO": "second"}}],
                "execute": [
                    sh(
                        "echo WHO; echo oops >&2",
                        stdout="out.WHO",
                        stderr="err.WHO",
                        merged="both.WHO",
                        scope={"enable": True, "export": ["both.WHO"]},
                    ),
                ],
            },
            final={"execute": [sh("cat both.first both.second", stdout="all")]},
        ),
    )
    prepare = result["prepare"]["execute"]
    for entry in prepare:
        assert_ok(entry)
    assert merged(prepare[0]) == b"0123"
    assert base64.b64decode(prepare[0]["record"]["stdout"]) == b"02"
    assert merged(prepare[1]) == b"012"  # its record's own size
    assert "merged" not in prepare[2]["record"]  # only with the option
    assert base64.b64decode(prepare[3]["record"]["stdout"]) == b"0123"
    assert normalised["prepare"]["execute"][0]["merged"] == "both"
    assert "merged" not in normalised["prepare"]["execute"][2]
    tasks = [t["execute"][0] for t in result["task"]]
    assert [sorted(merged(e).splitlines()) for e in tasks] == [
        [b"first", b"oops"],
        [b"oops", b"second"],
    ]
    final = result["final"]["execute"][0]
    assert sorted(base64.b64decode(final["record"]["stdout"]).splitlines()) == sorted(
        [b"first", b"oops", b"second", b"oops"]
    )
