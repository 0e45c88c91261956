"""`make engine` starts an engine that outlives `make run`, and `make engine-stop` stops it.

Run on a private engine (``JUDGE_ENGINE_DIR``), started by the same script the host's engine is
started by: the host's engine is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.harness import REPO, PrivateEngine, _alive

pytestmark = pytest.mark.docker


def _wait_gone(pgid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} still runs")
        time.sleep(0.05)


def test_the_engine_make_starts_survives_ctrl_c_and_engine_stop_stops_it(tmp_path: Path) -> None:
    engine = PrivateEngine(Path(f"/tmp/judge-engine-{os.getpid()}-{time.monotonic_ns()}"))
    try:
        # `make run` in a group of its own: the script starts the engine, then "the server"
        # (a sleep) runs in the same process group until Ctrl-C reaches the whole group.
        said = tmp_path / "make.log"
        with said.open("wb") as out:
            make = subprocess.Popen(
                ["bash", "-c", f"bash {REPO}/scripts/ensure-docker.sh && exec sleep 600"],
                env=engine.env,
                start_new_session=True,
                # As from a terminal: SIGINT not ignored (a test runner started in the
                # background may hand an ignored SIGINT down).
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 60
        while not (engine.pidfile.exists() and engine.answers()):
            assert make.poll() is None, said.read_text()
            assert time.monotonic() < deadline, "the private engine did not come up"
            time.sleep(0.1)
        pid = engine.pid()
        assert os.getsid(pid) == pid, "dockerd leads a session of its own"
        assert os.getpgid(pid) != make.pid
        # A private engine sees no host link: started with --bridge none, dockerd deletes any
        # docker0 it can see, the host engine's bridge included.
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")

        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C on make run
        try:
            make.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # What a process manager does next: the whole group goes.
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)
        _wait_gone(make.pid)
        assert _alive(pid), "Ctrl-C on make run reached the engine"
        assert engine.answers()

        log = engine.dir / "dockerd.log"
        assert log.stat().st_size > 0, "the engine logs where the script says"

        done = subprocess.run(
            ["make", "--no-print-directory", "-C", str(REPO), "engine-stop"],
            env=engine.env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "stopped" in done.stderr
        assert not _alive(pid)
        assert not engine.pidfile.exists()
        assert not engine.answers()
    finally:
        engine.remove()


def test_engine_stop_leaves_an_engine_it_did_not_start_alone(tmp_path: Path) -> None:
    # No pid file of ours: the host's engine (or any other) is not ours to stop.
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "engine-stop.sh")],
        env={**os.environ, "JUDGE_ENGINE_PIDFILE": str(tmp_path / "none.pid")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "leaving any other engine alone" in done.stderr
    # A pid file naming a process that is not dockerd (here: this test) is stale, not obeyed.
    stale = tmp_path / "stale.pid"
    stale.write_text(str(os.getpid()))
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "engine-stop.sh")],
        env={**os.environ, "JUDGE_ENGINE_PIDFILE": str(stale)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "names no running dockerd" in done.stderr
    assert not stale.exists()
