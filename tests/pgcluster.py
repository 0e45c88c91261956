"""A throwaway PostgreSQL cluster for tests, from Debian's ``postgresql`` package.

``JUDGE_TEST_DATABASE_URL`` (a server the tests may create databases on) is used when given;
otherwise ``initdb`` makes a cluster in a temporary directory, started on a free loopback port
(as user ``postgres`` when the tests run as root, which PostgreSQL refuses to be) and stopped
and removed at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL is not installed: apt-get install -y postgresql"
            " (or set JUDGE_TEST_DATABASE_URL)"
        )
    return Path(initdb).resolve().parent


def free_port() -> int:
    """A loopback port free at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster of its own in a temporary directory, on a fixed loopback port, that
    can be stopped (as a crash: ``-m immediate``) and started again on the same port."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="judge-pg-"))
        self.data = self.root / "data"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run(
            [
                self.bindir / "initdb",
                "-D",
                self.data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        )

    def _run(self, argv: list[Any], check: bool = True) -> None:
        subprocess.run(argv, user=self.user, check=check, capture_output=True)

    def start(self, fsync: bool = False) -> None:
        """Start the server and wait until it accepts connections (without fsync unless asked:
        the tests crash processes, not the machine)."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        options += "" if fsync else " -c fsync=off"
        log = self.root / "log"
        self._run(
            [self.bindir / "pg_ctl", "-D", self.data, "-o", options, "-l", log, "-w", "start"]
        )

    def stop(self) -> None:
        """Stop the server at once, as a crash would (no checkpoint, clients cut off)."""
        self._run([self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"], False)

    def remove(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def cluster() -> Iterator[str]:
    """Yield the URL of a server's maintenance database (``postgres``)."""
    given = os.environ.get("JUDGE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    own = Cluster()
    try:
        own.start()
        yield own.url
    finally:
        own.remove()


def database_url(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``server_url``."""
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


async def fresh_database(server_url: str) -> str:
    """Create an empty database of its own for one test; returns its URL."""
    import asyncpg

    name = f"judge_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(server_url, name)
