"""The data directory fills up: new submissions get 503 with ``Retry-After`` (the node cannot
store them now: a client retries, a load balancer may try another node), nothing accepted is
lost, and the node recovers by itself once there is room again. On a small tmpfs of the test's
own."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import StartJudge
from tests.service.support import Receiver, hello_world

pytestmark = pytest.mark.docker


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for this test alone."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; returns the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def test_a_full_data_directory_answers_503_loses_nothing_and_recovers(
    start_judge: StartJudge, receiver: Receiver, small_disk: Path
) -> None:
    judge, api = await start_judge(data_dir=small_disk / "data")
    status, body, _ = await api.submit(hello_world(receiver.url))
    assert status == 200, body
    accepted = body["msg"]["id"]
    assert dict((await receiver.next(timeout=60)).form())["id"] == str(accepted)

    filler = fill(small_disk)
    refused = 0
    ids = [accepted]
    for _ in range(5):
        status, body, headers = await api.submit(hello_world(receiver.url))
        if status == 503:
            refused += 1
            assert body["error"]["code"] == "storage_full", body
            assert int(headers["Retry-After"]) > 0
        else:
            # A write may still fit in a page SQLite already has: then it is stored for real.
            assert status == 200, body
            ids.append(body["msg"]["id"])
    assert refused >= 1, "a full disk never answered 503"
    assert (await api.get(accepted))[1]["state"] == "done"

    filler.unlink()  # room again: the node goes on by itself, no restart
    status, body, _ = await api.submit(hello_world(receiver.url))
    assert status == 200, body
    ids.append(body["msg"]["id"])
    got = {accepted}
    while not set(ids) <= got:  # every accepted mission is judged and called back
        got.add(int(dict((await receiver.next(timeout=60)).form())["id"]))
    for mission_id in ids:
        assert (await api.get(mission_id))[1]["state"] == "done"
    counts = await judge.app_store_counts()
    assert set(counts) == {"done"}, counts  # nothing accepted was lost or misjudged
    assert counts["done"] >= 2
