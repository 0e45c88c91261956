"""The archive branches the other archive tests do not reach: entry-count caps, names twice, a
file that is also a directory, special and encrypted zip entries, ZIP64 end records."""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import warnings
import zipfile

import pytest

from service.frontdoors.archives import MAX_ENTRIES, ArchiveRefused, read_tar, read_zip
from tests.frontdoors.conftest import make_zip


def make_tar(*names: str, content: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_a_tar_with_one_entry_more_than_allowed_is_refused() -> None:
    names = [f"f{i}" for i in range(MAX_ENTRIES)]
    assert len(read_tar(make_tar(*names, content=b""))) == MAX_ENTRIES
    with pytest.raises(ArchiveRefused, match=f"tar: more than {MAX_ENTRIES} entries"):
        read_tar(make_tar(*names, "one-more", content=b""))


def test_a_tar_naming_a_file_twice_is_refused() -> None:
    # Which copy would win depends on the archiver: refuse rather than keep either.
    with pytest.raises(ArchiveRefused, match="entry 'a/b' appears more than once"):
        read_tar(make_tar("a/b", "c", "./a//b"))


def test_a_zip_naming_a_file_twice_is_refused() -> None:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name" warning
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("x.txt", b"first")
            archive.writestr("x.txt", b"second")
    with pytest.raises(ArchiveRefused, match=r"entry 'x\.txt' appears more than once"):
        read_zip(buf.getvalue())


@pytest.mark.parametrize(
    ("names", "both"),
    [(("a", "a/b"), "a"), (("a/b/c", "a/b"), "a/b")],
    ids=["file-first", "dir-first"],
)
def test_a_tar_whose_file_is_also_a_directory_is_refused(names: tuple[str, str], both: str) -> None:
    with pytest.raises(ArchiveRefused, match=f"'{both}' is both a file and a directory"):
        read_tar(make_tar(*names))


@pytest.mark.parametrize(
    "kind",
    [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK],
    ids=["fifo", "chr", "blk", "sock"],
)
def test_a_zip_entry_that_is_a_device_or_fifo_is_refused(kind: int) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("fine.txt", b"ok")
        info = zipfile.ZipInfo("dev")
        info.create_system = 3  # unix: the high bits of external_attr are st_mode
        info.external_attr = (kind | 0o644) << 16
        archive.writestr(info, b"")
    with pytest.raises(ArchiveRefused, match="entry 'dev' is not a regular file"):
        read_zip(buf.getvalue())


def test_an_encrypted_zip_entry_is_refused_by_name() -> None:
    data = bytearray(make_zip({"secret.txt": b"hidden"}))
    # Set "encrypted" (bit 0 of the flags) in the local header and the central directory.
    local = data.find(b"PK\x03\x04")
    central = data.rfind(b"PK\x01\x02")
    for at in (local + 6, central + 8):
        (flags,) = struct.unpack_from("<H", data, at)
        struct.pack_into("<H", data, at, flags | 1)
    with pytest.raises(ArchiveRefused, match=r"entry 'secret\.txt' cannot be read .*encrypted"):
        read_zip(bytes(data))


def zip64(entries_declared: int) -> bytes:
    """A one-entry zip (its entry written with ZIP64 extras) whose end records are ZIP64 ones:
    the classic end record says 0xFFFF, the ZIP64 record ``entries_declared``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive, archive.open("big.txt", "w", force_zip64=True) as f:
        f.write(b"zip64 content")
    data = buf.getvalue()
    end = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, end + 12)
    record = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0,
        entries_declared, entries_declared, cd_size, cd_offset,
    )  # fmt: skip
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1)
    classic = bytearray(data[end:])
    struct.pack_into("<HH", classic, 8, 0xFFFF, 0xFFFF)
    return data[:end] + record + locator + bytes(classic)


def test_a_zip64_archive_is_read() -> None:
    assert read_zip(zip64(1)) == {"big.txt": b"zip64 content"}


def test_a_zip64_end_record_declaring_too_many_entries_is_refused_before_indexing() -> None:
    with pytest.raises(ArchiveRefused, match=f"zip: more than {MAX_ENTRIES} entries"):
        read_zip(zip64(MAX_ENTRIES + 1))
