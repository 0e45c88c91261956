"""Archives users send (zip for the executor API, tar for the exec API) read in memory.

Pure functions: nothing is unpacked on the host. Every entry is vetted (relative name, no ``..``,
no link or device) and every read is capped, so a hostile archive is refused with a message that
names the entry rather than "fixed".
"""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping

from orchestrator.tarutil import check_relative_path

MAX_UNPACKED_BYTES = 64 * 1024 * 1024
"""The most bytes the files of one uploaded archive may hold once unpacked."""
MAX_ENTRIES = 10_000

# Zip entries get this fixed time so that the same files always make the same zip (and hash).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ArchiveRefused(ValueError):
    """The archive is corrupt or unsafe; the message says which entry and why."""


def _entry_name(raw: str, what: str) -> str:
    if "\\" in raw:
        raise ArchiveRefused(f"{what}: entry '{raw}' contains a backslash")
    if len(raw) > 1 and raw[1] == ":":
        raise ArchiveRefused(f"{what}: entry '{raw}' is absolute (it names a drive)")
    try:
        return check_relative_path(raw)
    except ValueError as e:
        raise ArchiveRefused(f"{what}: entry refused: {e}") from None


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
    symbolic link or other special entry, too many entries, or more than ``max_bytes`` unpacked
    (declared or actual).
    """
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
            files[name] = content
    _check_layout(files, what)
    return files


def read_tar(
    data: bytes, what: str = "tar", *, max_bytes: int = MAX_UNPACKED_BYTES
) -> dict[str, bytes]:
    """The regular files of a tar (plain or compressed), like ``read_zip``.

    Raises ``ArchiveRefused`` for a corrupt archive, an absolute name, ``..``, a symbolic or hard
    link, a device or FIFO, too many entries or more than ``max_bytes`` unpacked.
    """
    files: dict[str, bytes] = {}
    total = 0
    count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
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
