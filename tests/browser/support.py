"""The judge as a process and the browser's settings, for the browser tests and the screenshots."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, expect

from tests.service.support import ALICE, REPO, server_env

CHROMIUM = os.environ.get("JUDGE_TEST_CHROMIUM", "/usr/bin/chromium")
# The machine's network is closed and the browser must not try it: no background requests, no
# component updates, no first-run pages. --no-sandbox because the tests run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class Judge:
    url: str
    token: str
    owner: str
    log: list[str] = field(default_factory=list)


@contextmanager
def running_judge(data_dir: Path) -> Iterator[Judge]:
    """``python -m service`` from this worktree, ready when it logs its address; its sandboxes
    carry an owner label of their own, and none may be left when it has stopped."""
    owner = f"judge-test-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, **server_env(data_dir, owner), "JUDGE_MAX_RUNNING": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    ready = threading.Event()
    found: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            if not found and (m := _LISTENING.search(line)):
                found.append(m.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, name="judge log", daemon=True)
    reader.start()
    try:
        if not ready.wait(60) or not found:
            raise AssertionError("the judge did not start:\n" + "\n".join(log))
        yield Judge(found[0], ALICE, owner, log)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
        _remove_sandboxes(owner)


def _remove_sandboxes(owner: str) -> None:
    label = f"label=io.judge.owner={owner}"
    ps = ["docker", "ps", "-aq", "--filter", label]
    containers = subprocess.run(ps, capture_output=True, text=True, check=False).stdout.split()
    if containers:
        subprocess.run(["docker", "rm", "-f", "-v", *containers], capture_output=True, check=False)
    assert containers == [], f"sandboxes left behind: {containers}"


@dataclass
class Watch:
    """What a page did that a test must not allow."""

    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type not in ("error", "assert"):
            return
        if any(p.search(msg.text) for p in self.allowed):
            return
        self.errors.append(f"console {msg.type}: {msg.text} ({msg.location})")


def sign_in(page: Page, token: str) -> None:
    """Type the token as a person would, and wait for the languages it unlocks."""
    page.get_by_label("Token").fill(token)
    page.get_by_label("Token").press("Tab")
    # (A locator, not wait_for_function: the page's CSP forbids evaluating strings.)
    expect(page.get_by_label("Language")).to_have_value(re.compile(".+"))
