"""Tar building and vetting, without Docker."""

from __future__ import annotations

import io
import re
import tarfile

import pytest

from orchestrator.errors import TransferRefused
from orchestrator.sandbox.tar import (
    archive_members,
    build_tar,
    check_relative_path,
    read_capped,
    vet_archive,
)


def make_tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in attrs.items():
        setattr(info, k, v)
    return info


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a.txt", "a.txt"), ("./a//b/", "a/b"), ("a/./b", "a/b"), ("we ird\n名", "we ird\n名")],
)
def test_relative_paths_are_normalised(path: str, expected: str) -> None:
    assert check_relative_path(path) == expected


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "non-empty string without NUL"),
        ("a\x00b", "non-empty string without NUL"),
        ("/etc/passwd", "is absolute"),
        ("a/../../b", "contains '..'"),
        ("..", "contains '..'"),
        (".", "names the sandbox itself"),
        ("./", "names the sandbox itself"),
    ],
)
def test_unsafe_paths_are_refused(path: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_relative_path(path)


def test_build_tar_adds_parents_and_owner() -> None:
    data = build_tar({"a/b/c.txt": b"x", "a/d.txt": b"yy", "top": b""})
    assert archive_members(data) == [
        ("a", "dir", 0),
        ("a/b", "dir", 0),
        ("a/b/c.txt", "file", 1),
        ("a/d.txt", "file", 2),
        ("top", "file", 0),
    ]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert {(m.uid, m.gid) for m in tar} == {(10001, 10001)}


def test_build_tar_refuses_escape() -> None:
    with pytest.raises(ValueError, match=r"\.\."):
        build_tar({"../x": b""})


def test_vet_keeps_files_and_dirs_and_resets_owner_and_mode() -> None:
    raw = make_tar(
        (member("d", tarfile.DIRTYPE, mode=0o755, uid=0), None),
        (member("d/f", mode=0o4755, uid=0, gid=0), b"content"),
    )
    vetted = vet_archive(raw, "'d'", max_file_bytes=1024)
    with tarfile.open(fileobj=io.BytesIO(vetted)) as tar:
        members = {m.name: m for m in tar}
        assert members["d/f"].mode == 0o755  # setuid bit gone
        assert members["d/f"].uid == 10001
        f = tar.extractfile(members["d/f"])
        assert f is not None
        assert f.read() == b"content"


@pytest.mark.parametrize(
    ("info", "match"),
    [
        (member("l", tarfile.SYMTYPE, linkname="/etc/passwd"), "link"),
        (member("h", tarfile.LNKTYPE, linkname="x"), "link"),
        (member("dev", tarfile.CHRTYPE), "not a regular file"),
        (member("fifo", tarfile.FIFOTYPE), "not a regular file"),
        (member("../escape"), r"\.\."),
        (member("/abs"), "absolute"),
    ],
)
def test_vet_refuses_hostile_members(info: tarfile.TarInfo, match: str) -> None:
    data = b"" if info.isreg() else None
    with pytest.raises(TransferRefused, match=match):
        vet_archive(make_tar((info, data)), "'x'", max_file_bytes=1024)


def test_vet_refuses_oversize_content() -> None:
    raw = make_tar((member("big"), b"x" * 2048))
    with pytest.raises(TransferRefused, match="larger than 1 KiB"):
        vet_archive(raw, "'big'", max_file_bytes=1024)


def test_vet_refuses_garbage() -> None:
    with pytest.raises(TransferRefused, match="tar"):
        vet_archive(b"not a tar" * 100, "'x'", max_file_bytes=1024)


def test_read_capped_stops_early() -> None:
    consumed = []

    def chunks() -> object:
        for i in range(100):
            consumed.append(i)
            yield b"x" * 100

    with pytest.raises(TransferRefused):
        read_capped(chunks(), 250, "'x'")  # type: ignore[arg-type]
    assert len(consumed) == 3
    assert read_capped([b"ab", b"c"], 3, "'x'") == b"abc"


def test_concat_archives_keeps_every_member_and_content() -> None:
    from orchestrator.sandbox.tar import concat_archives

    joined = concat_archives([build_tar({"a/x": b"1"}), build_tar({"b": b"22"})])
    assert archive_members(joined) == [("a", "dir", 0), ("a/x", "file", 1), ("b", "file", 2)]
    with tarfile.open(fileobj=io.BytesIO(joined)) as tar:
        f = tar.extractfile("b")
        assert f is not None
        assert f.read() == b"22"
