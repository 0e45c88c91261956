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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster() -> Iterator[str]:
    """Yield the URL of a server's maintenance database (``postgres``)."""
    given = os.environ.get("JUDGE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    bindir = _bindir()
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="judge-pg-"))
    data = root / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    run = {"user": user, "check": True, "capture_output": True}
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            **run,  # type: ignore[call-overload]
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [bindir / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w", "start"],
            **run,  # type: ignore[call-overload]
        )
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                user=user,
                capture_output=True,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
