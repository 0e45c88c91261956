"""Archive vetting and the database migration, without Docker."""

from __future__ import annotations

import io
import sqlite3
import tarfile
import zipfile
from pathlib import Path

import pytest

from service.frontdoors.archives import (
    ArchiveRefused,
    build_zip,
    read_tar,
    read_zip,
    sandbox_files,
    zip_member,
)
from service.frontdoors.webgme.executor import matches
from service.store import Database
from tests.frontdoors.conftest import make_zip


def test_read_zip_keeps_files_and_skips_directories() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("dir/", b"")
        archive.writestr("dir/a.txt", b"a")
        archive.writestr("./b.txt", b"b")
    assert read_zip(buf.getvalue()) == {"dir/a.txt": b"a", "b.txt": b"b"}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"../x": b""}, "contains '..'"),
        ({"a/../../x": b""}, "contains '..'"),
        ({"/etc/x": b""}, "is absolute"),
        ({"C:/x": b""}, "is absolute"),
        ({"a\\..\\x": b""}, "backslash"),
        ({"a": b"", "a/b": b""}, "both a file and a directory"),
    ],
)
def test_read_zip_refuses_unsafe_names(files: dict[str, bytes], expected: str) -> None:
    with pytest.raises(ArchiveRefused, match=expected.replace("\\", "\\\\")):
        read_zip(make_zip(files))


def test_read_zip_refuses_links_and_bombs() -> None:
    with pytest.raises(ArchiveRefused, match="symbolic link"):
        read_zip(make_zip({}, links={"ln": "/etc/passwd"}))
    bomb = make_zip({"zeros": bytes(2 * 1024 * 1024)})
    assert len(bomb) < 10_000
    with pytest.raises(ArchiveRefused, match="more than the 1048576 allowed"):
        read_zip(bomb, max_bytes=1024 * 1024)


def test_read_zip_refuses_a_lying_size_header() -> None:
    data = bytearray(make_zip({"a": bytes(4096)}))
    # Patch the central directory's uncompressed size (offset 24 of its entry) to 1 byte.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1).to_bytes(4, "little")
    # zipfile reads the 1 byte declared, whose CRC is not the entry's: refused, nothing kept.
    with pytest.raises(ArchiveRefused, match=r"entry 'a' cannot be read \(Bad CRC-32"):
        read_zip(bytes(data))


def test_read_tar_refuses_links_devices_and_unsafe_names() -> None:
    def tar(*members: tarfile.TarInfo) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as archive:
            for m in members:
                archive.addfile(m, io.BytesIO(b"") if m.isreg() else None)
        return buf.getvalue()

    def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
        m = tarfile.TarInfo(name)
        m.type = kind
        m.linkname = link
        return m

    assert read_tar(tar(info("./a"), info("d", tarfile.DIRTYPE))) == {"a": b""}
    for member, expected in [
        (info("../a"), "contains '..'"),
        (info("/a"), "is absolute"),
        (info("s", tarfile.SYMTYPE, "/etc"), "is a link"),
        (info("h", tarfile.LNKTYPE, "a"), "is a link"),
        (info("c", tarfile.CHRTYPE), "not a regular file"),
        (info("f", tarfile.FIFOTYPE), "not a regular file"),
    ]:
        with pytest.raises(ArchiveRefused, match=expected):
            read_tar(tar(member))


def test_build_zip_is_deterministic_and_readable() -> None:
    files = [("b/x.txt", b"x"), ("a.txt", b"a")]
    assert build_zip(files) == build_zip(files)
    assert zip_member(build_zip(files), "b/x.txt", max_bytes=10) == b"x"
    assert zip_member(build_zip(files), "missing", max_bytes=10) is None
    with pytest.raises(ArchiveRefused, match="larger than"):
        zip_member(build_zip([("big", bytes(100))]), "big", max_bytes=10)


def test_sandbox_files_strips_the_top_directory() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for name, content in [("box/a.txt", b"a"), ("box/d/b.txt", b"b")]:
            m = tarfile.TarInfo(name)
            m.size = len(content)
            archive.addfile(m, io.BytesIO(content))
    assert sandbox_files(buf.getvalue()) == {"a.txt": b"a", "d/b.txt": b"b"}


def test_result_patterns() -> None:
    assert matches("anything/at/all", [])
    assert matches("out/a.txt", ["*.txt"])
    assert matches("out/a.txt", ["out/*"])
    assert not matches("out/a.txt", ["a/*.txt"])
    assert not matches("b.log", ["*.txt"])


def test_an_old_database_gets_the_kind_column(tmp_path: Path) -> None:
    path = tmp_path / "judge.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE missions (id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash TEXT NOT NULL,"
        " state TEXT NOT NULL, mission TEXT NOT NULL, normalised TEXT NOT NULL, result TEXT,"
        " error TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL,"
        " runs INTEGER NOT NULL DEFAULT 0, delivery_id TEXT NOT NULL,"
        " callback_state TEXT NOT NULL DEFAULT 'waiting',"
        " callback_attempts INTEGER NOT NULL DEFAULT 0, callback_error TEXT NOT NULL DEFAULT '')"
    )
    conn.execute(
        "INSERT INTO missions (token_hash, state, mission, normalised, created_at, updated_at,"
        " delivery_id) VALUES ('t', 'queued', '{}', '{}', 0, 0, 'd')"
    )
    conn.commit()
    conn.close()
    db = Database(path)
    try:
        row = db.get_mission(1)
        assert row is not None
        assert row.kind == "mission"
        # Only the mission API's missions get a callback.
        other = db.insert_mission("t", {}, {}, "executor")
        for mission_id in (1, other):
            assert db.claim(mission_id) is not None
            db.finish(mission_id, "done", {})
        assert db.pending_callbacks() == [1]
    finally:
        db.close()
