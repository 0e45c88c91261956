"""PostgreSQL's own disk fills up: the store raises ``StoreFull`` (503 ``storage_full`` with
``Retry-After``, as SQLite's full data directory does: tests/faults/test_disk_full.py), nothing
stored is lost, and writes succeed again once there is room, without a reconnect.

A throwaway cluster of the test's own whose database lives in a tablespace on a 16 MiB tmpfs:
a table that cannot grow is PostgreSQL's "could not extend file" (SQLSTATE 53100), while its
write-ahead log stays on a disk with room (a full WAL disk stops the server instead).
"""

from __future__ import annotations

import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from service.store import PgStore, StoreFull
from tests.faults.test_disk_full import fill
from tests.pgcluster import Cluster, database_url

MISSION = {"prepare": {"execute": [{"command": ["true"]}]}, "pad": "x" * 4000}


@pytest.fixture
def small_tablespace() -> Iterator[tuple[str, Path]]:
    """A cluster of its own and a 16 MiB tmpfs in its directory (where its server user can
    reach it) for a tablespace; (server URL, mount)."""
    cluster = Cluster()
    mount = cluster.root / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "pg").mkdir()
        if cluster.user is not None:
            entry = pwd.getpwnam(cluster.user)
            subprocess.run(
                ["chown", f"{entry.pw_uid}:{entry.pw_gid}", str(mount), str(mount / "pg")],
                check=True,
            )
        cluster.start()
        yield cluster.url, mount
    finally:
        cluster.stop()
        subprocess.run(["umount", "-l", str(mount)], check=False)
        cluster.remove()


async def test_postgresqls_full_disk_is_storage_full_and_recovers(
    small_tablespace: tuple[str, Path],
) -> None:
    server_url, mount = small_tablespace
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"CREATE TABLESPACE small LOCATION '{mount / 'pg'}'")
        await conn.execute("CREATE DATABASE judge_small TABLESPACE small")
    finally:
        await conn.close()
    store = await PgStore.open(database_url(server_url, "judge_small"))
    try:
        kept = [await store.missions.insert_mission("t" * 64, MISSION, MISSION, "mission")]
        filler = fill(mount)
        full = None
        for _ in range(2000):  # pages PostgreSQL already has take a few rows first
            try:
                kept.append(
                    await store.missions.insert_mission("t" * 64, MISSION, MISSION, "mission")
                )
            except StoreFull as e:
                full = e
                break
        assert full is not None, "the full disk was never told"
        assert isinstance(full.__cause__, asyncpg.DiskFullError)
        assert "could not extend file" in str(full)

        filler.unlink()  # room again: the same pool writes on
        kept.append(await store.missions.insert_mission("t" * 64, MISSION, MISSION, "mission"))
        for mission_id in kept:
            row = await store.missions.get_mission(mission_id)
            assert row is not None
            assert row.mission == MISSION
    finally:
        await store.close()
