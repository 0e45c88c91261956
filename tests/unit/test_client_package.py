"""The client is its own distribution: ``pip install ./client`` into a bare virtualenv pulls in
nothing else, and the ``judge`` command it installs runs there (offline: no index is asked)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.service.support import REPO


def pip(*args: str | Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *map(str, args)], check=True)


def test_the_client_installs_alone_into_a_bare_venv(tmp_path: Path) -> None:
    # A copy: building in client/ itself would leave build/ and *.egg-info behind.
    source = shutil.copytree(
        REPO / "client",
        tmp_path / "client",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
    )
    pip("wheel", "--no-index", "--no-deps", "--no-build-isolation", "-w", tmp_path, source)
    (wheel,) = tmp_path.glob("judge_client-*.whl")
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", bare], check=True)
    python = bare / "bin" / "python"
    # Dependencies are resolved (no --no-deps) but no index is reachable: a declared dependency
    # would fail this install.
    pip("--python", python, "install", "--no-index", wheel)
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [line.split("==")[0] for line in listed] == ["judge-client"]
    got = subprocess.run(
        [bare / "bin" / "judge", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert got.returncode == 0, got.stderr
    assert "run" in got.stdout
    got = subprocess.run(
        [bare / "bin" / "judge", "tokens", "list"], capture_output=True, text=True, cwd=tmp_path
    )
    assert got.returncode == 1
    assert "judge-admin tokens" in got.stderr
