"""Archives users send (zip for the executor API, tar for the exec API) read in memory.

Pure functions: nothing is unpacked on the host. Every entry is vetted (relative name, no ``..``,
no link or device, no control character) and every read is capped, so a hostile archive is
refused with a message that names the entry rather than "fixed". A compressed tar is
decompressed with a hard cap while streaming, and its headers are walked and bounded before
``tarfile`` reads them (``tarfile`` reads GNU long names and PAX headers whole, whatever they
declare); a zip's entry count is read from its end record before ``zipfile`` builds its index.
Every function here is proportional to its input: callers run them off the event loop.
"""

from __future__ import annotations

import bz2
import io
import lzma
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping

from orchestrator.errors import TransferRefused
from orchestrator.paths import check_name
from orchestrator.sandbox.tar import MAX_META_BYTES, check_tar_headers

MAX_UNPACKED_BYTES = 64 * 1024 * 1024
"""The most bytes the files of one uploaded archive may hold once unpacked."""
MAX_ENTRIES = 10_000

# Zip entries get this fixed time so that the same files always make the same zip (and hash).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20
# Beyond the files' own bytes a tar holds a header (and up to 511 bytes of padding) per entry,
# perhaps with a long-name or PAX record before it.
_TAR_OVERHEAD_PER_ENTRY = 3 * 512 + 2 * 512


class ArchiveRefused(ValueError):
    """The archive is corrupt or unsafe; the message says which entry and why."""


def _entry_name(raw: str, what: str) -> str:
    if "\\" in raw:
        raise ArchiveRefused(f"{what}: entry '{raw}' contains a backslash")
    if len(raw) > 1 and raw[1] == ":":
        raise ArchiveRefused(f"{what}: entry '{raw}' is absolute (it names a drive)")
    try:
        return check_name(raw)
    except ValueError as e:
        raise ArchiveRefused(f"{what}: entry refused: {e}") from None


def _decompressed(data: bytes, cap: int, what: str) -> io.BytesIO:
    """``data`` when it is no gzip, bzip2 or xz stream, else its decompressed bytes, as a file.

    Decompression stops as soon as more than ``cap`` bytes come out (a bomb never gets further
    than that). Raises ``ArchiveRefused`` for more than ``cap`` bytes or a corrupt stream.
    """
    if data[:2] == b"\x1f\x8b":
        return _inflate(data, cap, what)
    if data[:3] == b"BZh":
        return _drain(bz2.BZ2Decompressor(), data, cap, what)
    if data[:6] == b"\xfd7zXZ\x00":
        return _drain(lzma.LZMADecompressor(), data, cap, what)
    return io.BytesIO(data)  # shares the bytes: no copy


class _Capped:
    """Decompressed bytes written straight into the file ``tarfile`` will read (no second copy),
    refused as soon as they pass ``cap``."""

    def __init__(self, cap: int, what: str) -> None:
        self.file = io.BytesIO()
        self.cap = cap
        self.what = what

    def add(self, chunk: bytes) -> None:
        if self.file.tell() + len(chunk) > self.cap:
            raise ArchiveRefused(f"{self.what}: more than {self.cap} bytes once decompressed")
        self.file.write(chunk)


def _inflate(data: bytes, cap: int, what: str) -> io.BytesIO:
    out = _Capped(cap, what)
    pending = data
    try:
        while pending:  # one gzip member after another, as gzip itself reads them
            inflater = zlib.decompressobj(wbits=31)
            while not inflater.eof:
                chunk = inflater.decompress(pending, _CHUNK)
                pending = inflater.unconsumed_tail
                out.add(chunk)
                if not chunk and not pending:
                    break  # a truncated stream: tarfile names what is missing
            pending = inflater.unused_data if inflater.eof else b""
            if pending[:2] != b"\x1f\x8b":
                break  # trailing garbage after the last member is ignored, as gzip does
    except zlib.error as e:
        raise ArchiveRefused(f"{what}: corrupt gzip stream ({e})") from None
    return out.file


def _drain(
    decompressor: bz2.BZ2Decompressor | lzma.LZMADecompressor, data: bytes, cap: int, what: str
) -> io.BytesIO:
    out = _Capped(cap, what)
    try:
        chunk = decompressor.decompress(data, max_length=_CHUNK)
        while True:
            out.add(chunk)
            if decompressor.eof or decompressor.needs_input:
                break
            chunk = decompressor.decompress(b"", max_length=_CHUNK)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise ArchiveRefused(f"{what}: corrupt compressed stream ({e})") from None
    return out.file


def _zip_entry_count(data: bytes) -> int | None:
    """The entry count a zip's end-of-central-directory record declares (zip64 included), or
    None when there is no such record (``zipfile`` then refuses the archive)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, end + 10)
    locator = end - 20
    if count == 0xFFFF and locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if data[offset : offset + 4] == b"PK\x06\x06" and offset + 56 <= len(data):
            (count,) = struct.unpack_from("<Q", data, offset + 32)
    return int(count)


def _check_new(files: Mapping[str, bytes], name: str, what: str) -> None:
    """Refuse a second entry of the same name: which one wins is the archiver's secret."""
    if name in files:
        raise ArchiveRefused(f"{what}: entry '{name}' appears more than once")


def _check_layout(files: Mapping[str, bytes], what: str) -> None:
    """A name may not be both a file and the directory of another file."""
    for name in files:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                raise ArchiveRefused(f"{what}: '{parent}' is both a file and a directory")


def read_zip(
    data: bytes, what: str = "zip", *, max_bytes: int = MAX_UNPACKED_BYTES
) -> dict[str, bytes]:
    """The regular files of a zip (relative name -> content); directories are implied.

    Raises ``ArchiveRefused`` for a corrupt or encrypted archive, an absolute name, ``..``, a
    symbolic link or other special entry, a name twice, too many entries, or more than
    ``max_bytes`` unpacked (declared or actual).
    """
    declared_entries = _zip_entry_count(data)
    if declared_entries is not None and declared_entries > MAX_ENTRIES:
        # zipfile would build an object per entry first: refuse from the end record alone.
        raise ArchiveRefused(f"{what}: more than {MAX_ENTRIES} entries")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ArchiveRefused(f"{what}: not a zip archive ({e})") from None
    files: dict[str, bytes] = {}
    total = 0
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ArchiveRefused(f"{what}: more than {MAX_ENTRIES} entries")
        declared = sum(info.file_size for info in infos)
        if declared > max_bytes:
            raise ArchiveRefused(
                f"{what}: {declared} bytes unpacked is more than the {max_bytes} allowed"
            )
        for info in infos:
            name = _entry_name(info.filename, what)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise ArchiveRefused(f"{what}: entry '{name}' is a symbolic link")
            if info.is_dir() or kind == stat.S_IFDIR:
                continue
            if kind not in (0, stat.S_IFREG):
                raise ArchiveRefused(f"{what}: entry '{name}' is not a regular file")
            try:
                with archive.open(info) as member:
                    content = member.read(max_bytes - total + 1)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as e:
                raise ArchiveRefused(f"{what}: entry '{name}' cannot be read ({e})") from None
            except (EOFError, zlib.error) as e:
                raise ArchiveRefused(f"{what}: entry '{name}' is corrupt ({e})") from None
            total += len(content)
            if total > max_bytes:
                raise ArchiveRefused(f"{what}: more than {max_bytes} bytes unpacked")
            _check_new(files, name, what)
            files[name] = content
    _check_layout(files, what)
    return files


def read_tar(
    data: bytes, what: str = "tar", *, max_bytes: int = MAX_UNPACKED_BYTES
) -> dict[str, bytes]:
    """The regular files of a tar (plain, gzip, bzip2 or xz), like ``read_zip``.

    Raises ``ArchiveRefused`` for a corrupt archive, an absolute name, ``..``, a symbolic or hard
    link, a device or FIFO, a file name twice, too many entries, more than ``max_bytes``
    unpacked, a stream that decompresses to more than the files and their headers could fill,
    or a long-name or PAX record larger than ``MAX_META_BYTES``.
    """
    files: dict[str, bytes] = {}
    total = 0
    count = 0
    cap = max_bytes + MAX_ENTRIES * _TAR_OVERHEAD_PER_ENTRY + 2 * MAX_META_BYTES
    plain = _decompressed(data, cap, what)
    try:
        with plain.getbuffer() as view:
            check_tar_headers(view, what, max_headers=4 * MAX_ENTRIES)
    except TransferRefused as e:
        raise ArchiveRefused(str(e)) from None
    plain.seek(0)
    try:
        with tarfile.open(fileobj=plain, mode="r:") as archive:
            while (member := archive.next()) is not None:
                count += 1
                if count > MAX_ENTRIES:
                    raise ArchiveRefused(f"{what}: more than {MAX_ENTRIES} entries")
                name = _entry_name(member.name, what)
                if member.issym() or member.islnk():
                    raise ArchiveRefused(
                        f"{what}: entry '{name}' is a link (to '{member.linkname}')"
                    )
                if member.isdir():
                    continue
                if not member.isreg():
                    raise ArchiveRefused(f"{what}: entry '{name}' is not a regular file")
                total += member.size
                if total > max_bytes:
                    raise ArchiveRefused(f"{what}: more than {max_bytes} bytes unpacked")
                _check_new(files, name, what)
                fileobj = archive.extractfile(member)
                files[name] = b"" if fileobj is None else fileobj.read(member.size)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ArchiveRefused(f"{what}: not a readable tar archive ({e})") from None
    _check_layout(files, what)
    return files


def sandbox_files(data: bytes, top: str = "box") -> dict[str, bytes]:
    """The regular files of a (vetted) tar read back from a sandbox, named relative to ``top``."""
    files: dict[str, bytes] = {}
    prefix = top + "/"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive:
            if not member.isreg() or not member.name.startswith(prefix):
                continue
            fileobj = archive.extractfile(member)
            files[member.name[len(prefix) :]] = b"" if fileobj is None else fileobj.read()
    return files


def build_zip(files: Iterable[tuple[str, bytes]]) -> bytes:
    """A deflated zip of ``files`` (name, content) in the order given, with fixed times."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, content)
    return buf.getvalue()


def zip_member(data: bytes, name: str, *, max_bytes: int) -> bytes | None:
    """One file of a zip, None when there is none by that name (or it is no zip).

    Raises ``ArchiveRefused`` when it is larger than ``max_bytes`` or cannot be read.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None
    with archive:
        try:
            info = archive.getinfo(name)
        except KeyError:
            return None
        if info.is_dir():
            return None
        if info.file_size > max_bytes:
            raise ArchiveRefused(f"'{name}' is larger than {max_bytes} bytes")
        try:
            with archive.open(info) as member:
                content = member.read(max_bytes + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as e:
            raise ArchiveRefused(f"'{name}' cannot be read ({e})") from None
        if len(content) > max_bytes:
            raise ArchiveRefused(f"'{name}' is larger than {max_bytes} bytes")
        return content
