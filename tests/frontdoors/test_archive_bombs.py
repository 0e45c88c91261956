"""Hostile archives for the front doors: bombs and oversized header records are refused while
the server's memory stays near the size of what it was sent (tracemalloc)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import tracemalloc
import zipfile
from collections.abc import Callable

import pytest

from service.frontdoors.archives import (
    MAX_ENTRIES,
    MAX_UNPACKED_BYTES,
    ArchiveRefused,
    read_tar,
    read_zip,
)

MiB = 1 << 20


def peak(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        try:
            fn()
        except ArchiveRefused:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def long_name_header(declared: int) -> bytes:
    """A GNU long-name ('L') header declaring ``declared`` bytes of name, then nothing."""
    info = tarfile.TarInfo("././@LongLink")
    info.type = tarfile.GNUTYPE_LONGNAME
    info.size = declared
    return info.tobuf(format=tarfile.GNU_FORMAT)


def test_a_bzip2_long_name_bomb_is_refused_before_tarfile_reads_it() -> None:
    """The report's 475-byte request: a long-name record declaring 512 MiB, compressed."""
    payload = long_name_header(512 * MiB) + b"\0" * (16 * MiB)
    bomb = bz2.compress(payload, 9)
    assert len(bomb) < 2048
    with pytest.raises(ArchiveRefused, match=r"declares 536870912 bytes of names"):
        read_tar(bomb)
    assert peak(lambda: read_tar(bomb)) < 40 * MiB


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_a_decompression_bomb_stops_at_the_cap(compress: Callable[[bytes], bytes]) -> None:
    zeros = b"\0" * (256 * MiB)
    bomb = compress(zeros)
    del zeros
    with pytest.raises(ArchiveRefused, match="once decompressed"):
        read_tar(bomb)
    assert peak(lambda: read_tar(bomb)) < 3 * MAX_UNPACKED_BYTES


def test_a_pax_header_declaring_a_huge_record_is_refused() -> None:
    info = tarfile.TarInfo("./PaxHeaders/x")
    info.type = tarfile.XHDTYPE
    info.size = 64 * MiB
    data = gzip.compress(info.tobuf(format=tarfile.USTAR_FORMAT) + b"\0" * 1024)
    with pytest.raises(ArchiveRefused, match="bytes of names or attributes"):
        read_tar(data)


def test_legitimate_archives_with_long_names_and_pax_still_read() -> None:
    buf = io.BytesIO()
    long = "d/" + "n" * 300
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, content in ((long, b"long"), ("é.txt", b"utf8"), ("a/b", b"x" * 5000)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    got = read_tar(buf.getvalue())
    assert got == {long: b"long", "é.txt": b"utf8", "a/b": b"x" * 5000}
    gnu = io.BytesIO()
    with tarfile.open(fileobj=gnu, mode="w:bz2", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(long)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"gnu!"))
    assert read_tar(gnu.getvalue()) == {long: b"gnu!"}


@pytest.mark.parametrize("name", ["a\nb", "x\x1by"])
def test_control_characters_in_entry_names_are_refused(name: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveRefused, match="control character"):
        read_tar(buf.getvalue())
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as archive:
        archive.writestr(name, b"")
    with pytest.raises(ArchiveRefused, match="control character"):
        read_zip(zbuf.getvalue())


def test_a_zip_declaring_more_entries_than_allowed_is_refused_from_its_end_record() -> None:
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as archive:
        archive.writestr("a", b"")
    data = bytearray(zbuf.getvalue())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, MAX_ENTRIES + 1, MAX_ENTRIES + 1)
    with pytest.raises(ArchiveRefused, match="more than"):
        read_zip(bytes(data))


def test_a_zip_with_many_tiny_entries_is_refused_before_indexing() -> None:
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as archive:
        for i in range(MAX_ENTRIES + 1):
            archive.writestr(f"{i}", b"")
    data = zbuf.getvalue()
    with pytest.raises(ArchiveRefused, match="more than"):
        read_zip(data)
    assert peak(lambda: read_zip(data)) < len(data)
