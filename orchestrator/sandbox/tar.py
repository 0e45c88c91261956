"""Tar archives as pure functions: build archives for sandboxes and vet archives read from them.

Nothing here touches the file system or Docker. Archives read back from a sandbox are parsed member
by member in memory and re-encoded, never extracted on the host; links, devices and unsafe names
are refused rather than "fixed", so a hostile sandbox cannot smuggle anything through a copy.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Iterable, Mapping

from orchestrator.errors import TransferRefused
from orchestrator.paths import check_relative_path

SANDBOX_UID = 10001
SANDBOX_GID = 10001

_FILE_MODE_MASK = 0o777  # no setuid, setgid or sticky bits ever cross into a sandbox

MAX_META_BYTES = 64 * 1024
"""The most bytes a GNU long-name/long-link record or a PAX header may declare: ``tarfile``
reads such records whole, before any member is looked at."""
_BLOCK = 512
_META_TYPES = (b"L", b"K", b"x", b"g")


def _octal_field(field: bytes) -> int | None:
    """A tar header's numeric field: octal text, or GNU base-256 (first byte 0x80 or 0xff)."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return -value if field[:1] == b"\xff" else value
    text = field.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _pax_size(record: bytes) -> int | None:
    """The ``size`` a PAX header gives the next member, if any (records ``"<len> key=value\n"``)."""
    for line in record.split(b"\n"):
        _, _, item = line.partition(b" ")
        key, eq, value = item.partition(b"=")
        if eq and key == b"size":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def check_tar_headers(data: bytes | memoryview, what: str, *, max_headers: int) -> None:
    """Walk the 512-byte headers of an uncompressed tar without reading any member's content.

    ``tarfile`` reads a GNU long name or a PAX header whole, whatever size it declares; this
    refuses such a record over :data:`MAX_META_BYTES`, a malformed size field and more than
    ``max_headers`` headers, so that the archive can then be given to ``tarfile`` safely. Pure;
    proportional to the number of headers. Raises ``TransferRefused``.
    """
    pos, count, pax_size = 0, 0, None
    view = memoryview(data)
    while pos + _BLOCK <= len(data):
        block = bytes(view[pos : pos + _BLOCK])
        if block.count(0) == _BLOCK:
            return  # the end-of-archive marker
        count += 1
        if count > max_headers:
            raise TransferRefused(f"{what}: more than {max_headers} tar headers")
        size = _octal_field(block[124:136])
        if size is None or size < 0:
            raise TransferRefused(f"{what}: corrupt tar header at byte {pos}")
        kind = block[156:157]
        if kind in _META_TYPES:
            if size > MAX_META_BYTES:
                raise TransferRefused(
                    f"{what}: a tar header record at byte {pos} declares {size} bytes of names "
                    f"or attributes (at most {MAX_META_BYTES})"
                )
            if kind == b"x":
                start = pos + _BLOCK
                pax_size = _pax_size(bytes(view[start : start + size]))
        elif pax_size is not None:
            size, pax_size = pax_size, None
        pos += _BLOCK + -(-size // _BLOCK) * _BLOCK


def build_tar(files: Mapping[str, bytes], *, mtime: float | None = None) -> bytes:
    """Build an uncompressed tar of ``files`` (relative path -> content) owned by the sandbox user.

    Parent directories of nested names are added (mode 0755) so a file ``a/b.txt`` lands even when
    ``a`` does not exist yet. Raises ``ValueError`` for an unsafe path.
    """
    stamp = int(time.time() if mtime is None else mtime)
    buf = io.BytesIO()
    seen_dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for raw_name, data in files.items():
            name = check_relative_path(raw_name)
            parent = posixpath.dirname(name)
            chain: list[str] = []
            while parent and parent not in seen_dirs:
                chain.append(parent)
                parent = posixpath.dirname(parent)
            for d in reversed(chain):
                seen_dirs.add(d)
                tar.addfile(_info(d, tarfile.DIRTYPE, 0o755, 0, stamp))
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data), stamp), io.BytesIO(data))
    return buf.getvalue()


def _info(name: str, kind: bytes, mode: int, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = mtime
    info.uid, info.gid = SANDBOX_UID, SANDBOX_GID
    info.uname = info.gname = "sandbox"
    return info


def read_capped(chunks: Iterable[bytes], max_bytes: int, what: str) -> bytes:
    """Join ``chunks`` but stop as soon as more than ``max_bytes`` arrived.

    Raises ``TransferRefused`` when the stream is larger than ``max_bytes``.
    """
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > max_bytes:
            raise TransferRefused(f"{what} is larger than {max_bytes // 1024} KiB")
    return bytes(out)


def vet_archive(
    data: bytes,
    what: str,
    *,
    max_file_bytes: int,
    skip_special: bool = False,
    skip_root: bool = False,
) -> bytes:
    """Re-encode a tar read from a sandbox, keeping only directories and regular files.

    Proportional to the archive (thousands of members take seconds): call it off the event loop.

    Ownership becomes the sandbox user, modes lose setuid/setgid/sticky bits, names must be
    relative without ``..``. Raises ``TransferRefused`` naming the first offending member: a
    symbolic or hard link, a device or FIFO, an unsafe name, or content over ``max_file_bytes``.
    With ``skip_special`` links, devices and FIFOs are left out instead of refused; with
    ``skip_root`` so is a directory member naming the archive's root (``./``, as ``tar -cf x .``
    writes first), which is otherwise refused.
    """
    out = io.BytesIO()
    total = 0
    # Every member has a header of 512 bytes, so a tar of n bytes has at most n / 512 headers:
    # the walk is only about their sizes.
    check_tar_headers(data, what, max_headers=len(data) // _BLOCK + 1)
    try:
        src = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as e:
        raise TransferRefused(f"{what}: not a tar archive ({e})") from e
    with src, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        while True:
            try:
                member = src.next()
            except tarfile.TarError as e:
                raise TransferRefused(f"{what}: corrupt archive ({e})") from e
            if member is None:
                break
            if skip_root and member.isdir() and member.name.strip("/") in ("", "."):
                continue
            try:
                name = check_relative_path(member.name)
            except ValueError as e:
                raise TransferRefused(f"{what}: refused member: {e}") from e
            if skip_special and not (member.isdir() or member.isreg()):
                continue
            if member.issym() or member.islnk():
                raise TransferRefused(
                    f"{what}: '{name}' is a link (to '{member.linkname}'); links are not copied"
                )
            if not (member.isdir() or member.isreg()):
                raise TransferRefused(f"{what}: '{name}' is not a regular file or directory")
            total += member.size
            if total > max_file_bytes:
                raise TransferRefused(f"{what} is larger than {max_file_bytes // 1024} KiB")
            kind = tarfile.DIRTYPE if member.isdir() else tarfile.REGTYPE
            info = _info(name, kind, member.mode & _FILE_MODE_MASK, member.size, int(member.mtime))
            if member.isreg():
                fileobj = src.extractfile(member)
                if fileobj is None:  # pragma: no cover - isreg() guarantees a file object
                    raise TransferRefused(f"{what}: '{name}' has no content")
                dst.addfile(info, fileobj)
            else:
                dst.addfile(info)
    return out.getvalue()


def archive_members(data: bytes) -> list[tuple[str, str, int]]:
    """List ``(name, kind, size)`` of a tar's members; kind is ``dir``, ``file`` or ``other``."""
    result = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            kind = "dir" if m.isdir() else "file" if m.isreg() else "other"
            result.append((m.name, kind, m.size))
    return result


def single_file(data: bytes | None) -> bytes:
    """The content of the first regular file of a (vetted) tar, such as one path read back
    from a sandbox; b"" when there is none."""
    if not data:
        return b""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if member.isreg():
                fileobj = tar.extractfile(member)
                return b"" if fileobj is None else fileobj.read()
    return b""


def concat_archives(archives: list[bytes]) -> bytes:
    """Join tars (already vetted) into one, member by member, so they unpack in one call."""
    if len(archives) == 1:
        return archives[0]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for data in archives:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as src:
                for member in src:
                    dst.addfile(member, src.extractfile(member) if member.isreg() else None)
    return out.getvalue()
