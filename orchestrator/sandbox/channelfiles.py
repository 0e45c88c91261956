"""Files over the supervisor's channel (protocol version 2): requests and archives, as pure data.

The supervisor's ``put``, ``list`` and ``read`` operations (``images/supervisor/PROTOCOL.md``)
move files as the sandbox user, never following a link, one round trip per batch instead of an
archive unpacked by the engine. This module turns files and vetted tars into ``put`` request
lines, plans ``read`` batches from a listing, and turns a listing plus the bytes read into a raw
tar that ``tar.vet_archive`` then vets exactly as it vets the engine's archives. Nothing here
does I/O; the functions proportional to the data are meant to run off the event loop.
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.paths import check_relative_path
from orchestrator.sandbox.tar import SANDBOX_GID, SANDBOX_UID

# File bytes per request: base64 makes 4/3 of it, under the supervisor's 1 MiB line limit and
# the reader's 1 MiB answer limit. The supervisor refuses more than this per read.
CHUNK_BYTES = 512 * 1024
# Entries a listing may have (over all its pages) before it is refused, or read through the
# engine's archive call where /box is a volume.
MAX_LIST_ENTRIES = 200_000
# Most bytes of one request line: the supervisor's limit is 1 MiB.
LINE_BYTES = 900 * 1024


@dataclass(frozen=True)
class PutEntry:
    """One thing to place: a directory (``data`` None) or a regular file."""

    path: str
    data: bytes | None
    mode: int = -1  # -1: the supervisor's default (0644 files, 0755 directories)


@dataclass(frozen=True)
class Listed:
    """One entry of a ``list`` answer: kind ``f`` file, ``d`` directory, ``l`` link, ``o`` other."""

    name: str
    kind: str
    mode: int
    size: int
    target: str = ""


def files_to_entries(files: Mapping[str, bytes]) -> list[PutEntry]:
    """Entries placing ``files`` (relative path -> content); raises ``ValueError`` for an unsafe
    path. Parent directories are made by the ``put`` request itself (``parents``)."""
    return [PutEntry(check_relative_path(name), data) for name, data in files.items()]


def tar_to_entries(data: bytes, directory: str) -> list[PutEntry]:
    """Entries unpacking a vetted tar (directories and regular files only) into ``directory``."""
    entries = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            name = check_relative_path(member.name)
            path = posixpath.join(directory, name) if directory else name
            if member.isdir():
                entries.append(PutEntry(path, None, member.mode & 0o777))
            elif member.isreg():
                fileobj = tar.extractfile(member)
                content = fileobj.read() if fileobj is not None else b""
                entries.append(PutEntry(path, content, member.mode & 0o777))
            else:  # a vetted tar has none; refuse rather than guess
                raise ValueError(f"'{name}' is not a regular file or directory")
    return entries


def put_lines(entries: Sequence[PutEntry], *, parents: bool) -> list[tuple[bytes, list[str]]]:
    """``put`` request lines for ``entries`` in order, each carrying at most ``CHUNK_BYTES`` of
    file data (a larger file continues in the next lines with ``append``), with the path of each
    entry of the line (to name the one a failure concerns)."""
    lines: list[tuple[bytes, list[str]]] = []
    batch: list[dict[str, object]] = []
    paths: list[str] = []
    size = 0  # file bytes in the batch
    line = 0  # estimated bytes of its line (many small entries fill it before CHUNK_BYTES)

    def flush() -> None:
        nonlocal batch, paths, size, line
        if batch:
            doc = {"op": "put", "parents": int(parents), "entries": batch}
            lines.append((json.dumps(doc, separators=(",", ":")).encode(), paths))
        batch, paths, size, line = [], [], 0, 0

    for entry in entries:
        # A path is at most 4 KiB, escaped at most 6x; a file's data is capped separately.
        if line + 6 * len(entry.path) + 64 > LINE_BYTES - CHUNK_BYTES * 4 // 3:
            flush()
        line += 6 * len(entry.path) + 64
        if entry.data is None:
            item: dict[str, object] = {"path": entry.path, "type": "d"}
            if entry.mode >= 0:
                item["mode"] = entry.mode
            batch.append(item)
            paths.append(entry.path)
            continue
        offset, first = 0, True
        while first or offset < len(entry.data):
            if size >= CHUNK_BYTES:
                flush()
            piece = entry.data[offset : offset + CHUNK_BYTES - size]
            item = {"path": entry.path, "data": base64.b64encode(piece).decode()}
            if entry.mode >= 0:
                item["mode"] = entry.mode
            if offset:
                item["append"] = 1
            batch.append(item)
            paths.append(entry.path)
            size += len(piece)
            offset += len(piece)
            first = False
    flush()
    return lines


def parse_listing(raw: Iterable[object]) -> list[Listed]:
    """The entries of a ``list`` answer; raises ``ValueError`` when one is malformed."""
    out = []
    for item in raw:
        if not (isinstance(item, list) and 4 <= len(item) <= 5):
            raise ValueError(f"malformed listing entry {item!r}")
        name, kind, mode, size = item[:4]
        target = item[4] if len(item) == 5 else ""
        if not (
            isinstance(name, str)
            and kind in ("f", "d", "l", "o")
            and isinstance(mode, int)
            and isinstance(size, int)
            and size >= 0
            and isinstance(target, str)
        ):
            raise ValueError(f"malformed listing entry {item!r}")
        out.append(Listed(name, kind, mode, size, target))
    return out


def box_path(listed_name: str, path: str) -> str:
    """The path in /box of a listed name (names are relative to the listed path's parent;
    ``box`` stands for /box itself when ``path`` is "")."""
    if not path:
        return listed_name.partition("/")[2]
    parent = posixpath.dirname(path)
    return posixpath.join(parent, listed_name) if parent else listed_name


def read_plan(listing: Sequence[Listed], path: str) -> list[list[tuple[int, int, int]]]:
    """Batches of ``(listing index, offset, length)`` covering every regular file's bytes, each
    batch at most ``CHUNK_BYTES``."""
    batches: list[list[tuple[int, int, int]]] = []
    batch: list[tuple[int, int, int]] = []
    size = 0
    for i, entry in enumerate(listing):
        if entry.kind != "f":
            continue
        offset = 0
        while offset < entry.size:
            if size >= CHUNK_BYTES:
                batches.append(batch)
                batch, size = [], 0
            n = min(entry.size - offset, CHUNK_BYTES - size)
            batch.append((i, offset, n))
            size += n
            offset += n
    if batch:
        batches.append(batch)
    return batches


def read_request(
    listing: Sequence[Listed], path: str, batch: Sequence[tuple[int, int, int]]
) -> dict[str, object]:
    """The ``read`` request of one batch of ``read_plan``."""
    files = [
        {"path": box_path(listing[i].name, path), "offset": offset, "length": n}
        for i, offset, n in batch
    ]
    return {"op": "read", "files": files}


def raw_tar(listing: Sequence[Listed], contents: Mapping[int, bytes]) -> bytes:
    """A tar of the listing as it is (links as links, others as FIFOs), file bytes from
    ``contents`` (listing index -> bytes; missing: empty), for ``vet_archive`` to judge."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i, entry in enumerate(listing):
            info = tarfile.TarInfo(entry.name)
            info.mode = entry.mode & 0o777
            info.uid, info.gid = SANDBOX_UID, SANDBOX_GID
            if entry.kind == "d":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "f":
                data = contents.get(i, b"")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif entry.kind == "l":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
    return buf.getvalue()


__all__ = [
    "CHUNK_BYTES",
    "MAX_LIST_ENTRIES",
    "Listed",
    "PutEntry",
    "box_path",
    "files_to_entries",
    "parse_listing",
    "put_lines",
    "raw_tar",
    "read_plan",
    "read_request",
    "tar_to_entries",
]
