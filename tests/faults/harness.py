"""What the fault tests break: a Docker engine of their own, never the one the host runs.

``PrivateEngine`` starts ``dockerd`` through ``scripts/ensure-docker.sh`` with
``JUDGE_ENGINE_DIR`` (its own socket, data root, exec root, pid file and log; no bridge, no
iptables), so killing it touches nothing else on the host. Images are copied into it from the
host's engine (``docker save | docker load``; judge/base, ~4 s) once per test session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class PrivateEngine:
    """A dockerd in a temporary directory of its own; ``kill`` and ``start`` as often as needed,
    ``remove`` at the end (stops it through ``scripts/engine-stop.sh`` and removes the dir)."""

    def __init__(self, root: Path | None = None) -> None:
        # Short path: the socket path must fit sun_path (108 bytes).
        self.dir = root or Path(tempfile.mkdtemp(prefix="judge-engine-", dir="/tmp"))
        self.host = f"unix://{self.dir}/docker.sock"
        self.env = {**os.environ, "JUDGE_ENGINE_DIR": str(self.dir), "DOCKER_HOST": self.host}
        self.env.pop("JUDGE_RUNTIMES", None)

    @property
    def pidfile(self) -> Path:
        return self.dir / "dockerd.pid"

    def pid(self) -> int:
        """The running dockerd's pid (from its pid file)."""
        return int(self.pidfile.read_text())

    def start(self) -> float:
        """Start it (``scripts/ensure-docker.sh``) and wait until it answers; returns seconds."""
        began = time.perf_counter()
        subprocess.run(
            ["bash", str(REPO / "scripts" / "ensure-docker.sh")],
            env=self.env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - began

    def answers(self) -> bool:
        """Whether the engine answers on its socket now."""
        done = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=self.env,
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def kill(self) -> None:
        """SIGKILL dockerd, as a crash does; returns once the process is gone (or a zombie,
        where nothing reaps it). Its containers die with it or on its next start."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"dockerd {pid} still runs 30 s after SIGKILL")
            time.sleep(0.05)

    def docker(self, *argv: str, stdin: bytes | None = None) -> str:
        """Run the docker CLI against this engine; returns its stdout."""
        done = subprocess.run(
            ["docker", *argv], env=self.env, input=stdin, capture_output=True, check=True
        )
        return done.stdout.decode()

    def copy_image(self, tag: str) -> None:
        """Copy ``tag`` from the host's engine unless this one has the same image id."""
        host_env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        want = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", tag],
            env=host_env,
            capture_output=True,
            check=True,
        ).stdout.strip()
        have = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", tag],
            env=self.env,
            capture_output=True,
            check=False,
        ).stdout.strip()
        if have == want:
            return
        save = subprocess.Popen(["docker", "save", tag], env=host_env, stdout=subprocess.PIPE)
        try:
            subprocess.run(
                ["docker", "load", "-q"],
                env=self.env,
                stdin=save.stdout,
                check=True,
                capture_output=True,
            )
        finally:
            assert save.stdout is not None
            save.stdout.close()
            if save.wait() != 0:
                raise AssertionError(f"docker save {tag} failed")

    def stop(self) -> None:
        """Stop it gracefully (``scripts/engine-stop.sh``)."""
        subprocess.run(
            ["bash", str(REPO / "scripts" / "engine-stop.sh")],
            env=self.env,
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        """Stop it, and everything it left: its containerd, mounts and directory.

        A killed engine is started once more first: on start it stops the containers it finds
        running, and a graceful stop then ends its containerd and shims in order."""
        if not (self.pidfile.exists() and _alive(self.pid())):
            try:
                self.start()
            except subprocess.CalledProcessError:
                pass
        if self.pidfile.exists() and _alive(self.pid()):
            self.stop()
        _kill_leftovers(self.dir)
        # engine-stop unmounts only when it finds nothing to stop, or after a stop.
        subprocess.run(
            ["bash", str(REPO / "scripts" / "engine-stop.sh")],
            env=self.env,
            check=False,
            capture_output=True,
        )
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], check=False)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: nothing may reap it in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill_leftovers(root: Path) -> None:
    """SIGKILL processes whose command line names ``root`` (a containerd or shim a killed
    dockerd left behind; they are this engine's alone)."""
    mark = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if mark in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
