"""Moving files in and out of a sandbox: the file half of ``Sandbox`` (``sandbox.py``).

Version 2 supervisors move files over their channel (``put``, ``list``, ``read``; see
images/supervisor/PROTOCOL.md); older images go through the engine's archive calls. Either way a
path never follows a link, every byte read back is capped and every archive is vetted before it
reaches a caller; nothing is unpacked on the host.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import posixpath
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.errors import PathNotFound, SandboxError, TransferRefused
from orchestrator.paths import check_relative_path
from orchestrator.sandbox.channelfiles import (
    MAX_LIST_ENTRIES,
    Listed,
    PutEntry,
    files_to_entries,
    parse_listing,
    put_lines,
    raw_tar,
    read_plan,
    read_request,
    tar_to_entries,
)
from orchestrator.sandbox.docker import BOX_PATH, ContainerHandle
from orchestrator.sandbox.tar import build_tar, vet_archive

if TYPE_CHECKING:
    from orchestrator.sandbox.sandbox import SandboxRuntime

# Time one file request (at most half a MiB of data) may take.
_TRANSFER_TIMEOUT_S = 30.0
# Data below this size is encoded or parsed on the event loop; above, on a thread.
INLINE_BYTES = 64 * 1024
# Per-file work (path checks, request lines) for more files than this runs on a thread: a
# mission may name 10,000 files of a byte each, far under INLINE_BYTES.
INLINE_FILES = 256
# ``compare_files`` reads this much of each file per request (a read answers 512 KiB at most).
COMPARE_PIECE_BYTES = 256 * 1024
# A read's failures that say a path cannot be compared (the sandbox's doing, no judge failure).
_UNREADABLE = frozenset(
    {"ENOENT", "ENOTDIR", "ELOOP", "EISDIR", "ENOTREG", "EACCES", "EPERM", "EINVAL"}
)

T = TypeVar("T")


def _parents(files: Mapping[str, bytes]) -> set[str]:
    """The directories holding ``files``' names (not the top); raises ``ValueError`` for an
    unsafe name."""
    return {posixpath.dirname(check_relative_path(n)) for n in files} - {""}


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` on a thread: work proportional to a transfer's size never blocks the loop."""
    return await asyncio.to_thread(fn, *args)


def _vetted_listing(
    listing: list[Listed], pieces: dict[int, list[bytes]], what: str, cap: int, skip_special: bool
) -> bytes:
    contents = {i: b"".join(parts) for i, parts in pieces.items()}
    return vet_archive(
        raw_tar(listing, contents), what, max_file_bytes=cap, skip_special=skip_special
    )


class FileTransfers:
    """The file operations of ``Sandbox``, which supplies the channel and the state below."""

    _runtime: SandboxRuntime
    _handle: ContainerHandle
    _channel: asyncio.Lock
    _ran: bool  # an execute ran: /box may hold links the sandbox made
    _broken: str | None

    if TYPE_CHECKING:  # what Sandbox supplies

        @property
        def container_id(self) -> str: ...

        @property
        def file_ops(self) -> bool: ...

        async def _request(self, doc: dict[str, Any], timeout_s: float) -> dict[str, Any]: ...

        async def _request_line(self, line: bytes, timeout_s: float) -> dict[str, Any]: ...

    async def write_file(self, path: str, data: bytes) -> str:
        """Write a small file as the sandbox user; returns "" or the reason it failed.

        Raises ``SandboxError`` when the sandbox itself failed.
        """
        check_relative_path(path)
        answer = await self._request(
            {"op": "write", "path": path, "data": base64.b64encode(data).decode()}, 10.0
        )
        return "" if answer.get("ok") else str(answer.get("error", "write failed"))

    async def put_files(self, files: Mapping[str, bytes]) -> None:
        """Place files (relative path -> content) in the sandbox, owned by the sandbox user.

        Parent directories are created. Raises ``ValueError`` for an unsafe path and
        ``JudgeError`` when the copy fails.
        """
        if not files:
            return
        # Nested names land in directories that an earlier execute may have made links.
        if len(files) <= INLINE_FILES:
            parents = _parents(files)
        else:
            parents = await off_loop(_parents, files)
        await self.refuse_links(sorted(parents), last=True)
        if self.file_ops:
            if len(files) <= INLINE_FILES:
                entries = files_to_entries(files)
            else:
                entries = await off_loop(files_to_entries, files)
            await self._put(entries, parents=True, directory="")
        else:
            # Building is proportional to the files: off the event loop.
            await self.put_archive("", await asyncio.to_thread(build_tar, files))

    async def refuse_links(self, paths: list[str], *, last: bool) -> None:
        """Refuse when a component of one of ``paths`` is a symbolic link (the last one too
        when ``last``); a missing component is left for the transfer itself to report.

        The engine copies as root and follows links in a path's leading components, so
        ``lnk/passwd`` with ``lnk -> /etc`` would read the image's ``/etc/passwd``. Nothing runs
        in the sandbox between executes, so what is checked here stays true for the transfer;
        before its first execute a sandbox holds no link at all (only vetted archives went in).
        Raises ``TransferRefused`` (its message starts with the quoted path) or ``SandboxError``.
        """
        if not self._ran:
            return
        owners: dict[str, str] = {}
        for rel in paths:
            parts = rel.split("/") if rel else []
            for i in range(len(parts) if last else len(parts) - 1):
                owners.setdefault("/".join(parts[: i + 1]), rel)
        if not owners:
            return
        prefixes = sorted(owners)  # a parent before its children
        if self.file_ops:
            # The supervisor never follows a link anyway; this names the link as the engine
            # path does, one listing (stopped after its first entry) per component.
            links = [await self._link_target(p) for p in prefixes]
        else:
            stats = await self._runtime.adapter.lstat_paths(
                self.container_id, [posixpath.join(BOX_PATH, p) for p in prefixes]
            )
            links = [st.link_target if st is not None and st.is_link else None for st in stats]
        for prefix, target in zip(prefixes, links, strict=True):
            if target is not None:
                raise TransferRefused(
                    f"'{owners[prefix]}': '{prefix}' is a link (to '{target}'); "
                    "paths are never followed through links"
                )

    async def _link_target(self, path: str) -> str | None:
        """The target of ``path`` when it is a symbolic link, else None (missing, or anything
        else), asked of the supervisor without following anything."""
        answer = await self._request(
            {"op": "list", "path": path, "max_entries": 1}, _TRANSFER_TIMEOUT_S
        )
        entries = answer.get("entries") if answer.get("ok") else None
        if isinstance(entries, list) and entries:
            first = entries[0]
            if isinstance(first, list) and len(first) == 5 and first[1] == "l":
                return str(first[4])
        return None

    async def put_archive(self, directory: str, data: bytes) -> None:
        """Unpack a (vetted) tar into ``directory`` ("" = the root), which must exist.

        Raises ``PathNotFound`` when the directory is missing and ``TransferRefused`` when one of
        its components is a link.
        """
        if directory:
            await self.refuse_links([check_relative_path(directory)], last=True)
        if self.file_ops:
            entries = await off_loop(tar_to_entries, data, directory)
            await self._put(entries, parents=False, directory=directory)
            return
        target = BOX_PATH if not directory else posixpath.join(BOX_PATH, directory)
        await self._runtime.adapter.put_archive(self.container_id, target, data)

    async def _put(self, entries: list[PutEntry], *, parents: bool, directory: str) -> None:
        """Place ``entries`` with ``put`` requests, in order; raises ``PathNotFound`` (a missing
        directory) or ``SandboxError`` naming the entry that could not be written."""
        few = len(entries) <= INLINE_FILES
        if few and sum(len(e.data or b"") + len(e.path) for e in entries) < INLINE_BYTES:
            lines = put_lines(entries, parents=parents)
        else:
            lines = await off_loop(functools.partial(put_lines, entries, parents=parents))
        for line, paths in lines:
            answer = await self._request_line(line, _TRANSFER_TIMEOUT_S)
            if answer.get("ok"):
                continue
            error = str(answer.get("error", "put failed"))
            if answer.get("code") == "ENOENT":
                raise PathNotFound(directory or paths[int(answer.get("index", 0) or 0)])
            raise SandboxError(f"cannot copy into the sandbox: {error}")

    async def compare_files(self, first: str, second: str) -> int | str:
        """Compare two regular files of the sandbox byte for byte, reading both over the
        channel in pieces (at most ``COMPARE_PIECE_BYTES`` of each per request: one round trip
        for files up to that size), never following a link.

        Returns -1 when they are equal, else the offset of their first difference (the shorter
        one's size when it is the other's start); or why one cannot be read (missing, a link, a
        directory, not a regular file): a string starting with the quoted path. Raises
        ``SandboxError`` when the sandbox failed, or has no file operations (``file_ops``).
        """
        paths = (check_relative_path(first), check_relative_path(second))
        if not self.file_ops:
            raise SandboxError("comparing files needs a supervisor with file operations")
        piece = COMPARE_PIECE_BYTES
        offset = 0
        while True:
            answer = await self._request(
                {
                    "op": "read",
                    "files": [{"path": p, "offset": offset, "length": piece} for p in paths],
                },
                _TRANSFER_TIMEOUT_S,
            )
            if not answer.get("ok"):
                if answer.get("code") not in _UNREADABLE:
                    raise SandboxError(f"cannot read in the sandbox: {answer.get('error', '?')}")
                index = answer.get("index")
                path = paths[index] if index in (0, 1) else paths[0]
                error = str(answer.get("error", "cannot read"))
                # The supervisor says "cannot read 'PATH': why".
                return error.removeprefix("cannot read ") if "'" in error else f"'{path}': {error}"
            data = answer.get("data")
            if (
                not isinstance(data, list)
                or len(data) != 2
                or not all(isinstance(d, str) for d in data)
            ):
                self._broken = "the sandbox supervisor answered garbage"
                raise SandboxError(self._broken, container_id=self.container_id)
            small = sum(map(len, data)) < INLINE_BYTES
            a, b = [
                base64.b64decode(d) if small else await off_loop(base64.b64decode, d) for d in data
            ]
            if len(a) > piece or len(b) > piece:
                self._broken = "the sandbox supervisor answered garbage"
                raise SandboxError(self._broken, container_id=self.container_id)
            if a != b:
                if small:
                    return offset + _first_difference(a, b)
                return offset + await off_loop(_first_difference, a, b)
            if len(a) < piece:  # both ended here
                return -1
            offset += piece

    async def get_archive(
        self, path: str, *, skip_special: bool = False, max_bytes: int | None = None
    ) -> bytes:
        """Return a vetted tar of ``path`` whose top member is its last component.

        ``path`` "" is the whole sandbox (top member ``box``). Reads at most ``max_bytes`` of
        files (default: the sandbox's disk size). Raises ``PathNotFound``, ``TransferRefused``
        (a link or device unless ``skip_special``, too large) or ``SandboxError``.
        """
        rel = check_relative_path(path) if path else ""
        cap = self._runtime.config.box_kib * 1024
        if max_bytes is not None:
            cap = min(cap, max_bytes)
        # While an execute holds the channel, a volume-backed /box is read through the engine
        # instead (a front door reading a running command's output); a tmpfs one waits.
        busy = self._channel.locked() and self._handle.volume_name is not None
        if self.file_ops and not busy:
            # The supervisor follows no link: a link in the path fails the listing itself, so
            # the check that names it (one round trip per component) runs only then.
            try:
                got = await self._get_over_channel(rel, cap, skip_special)
            except TransferRefused:
                await self.refuse_links([rel], last=False)
                raise
            if got is not None:
                return got
        # The last component may be a link: the archive then holds it as a link, refused below.
        await self.refuse_links([rel], last=False)
        # The raw tar carries 512-byte headers and padding beyond the files' own bytes.
        raw = await self._runtime.adapter.get_archive(
            self.container_id,
            posixpath.join(BOX_PATH, rel) if rel else BOX_PATH,
            cap + cap // 4 + 65536,
        )
        # Vetting walks every member (tens of thousands of files take seconds): off the loop.
        return await asyncio.to_thread(
            vet_archive, raw, f"'{rel or '.'}'", max_file_bytes=cap, skip_special=skip_special
        )

    async def _get_over_channel(self, rel: str, cap: int, skip_special: bool) -> bytes | None:
        """``get_archive`` by ``list`` and ``read``; None when the listing has too many entries
        for one answer (the engine's archive call then does it)."""
        what = f"'{rel or '.'}'"
        raw_entries: list[Any] = []
        while True:  # pages of at most 768 KiB, each after the entries already answered
            answer = await self._request(
                {
                    "op": "list",
                    "path": rel,
                    "max_bytes": cap,
                    "max_entries": MAX_LIST_ENTRIES,
                    "skip": len(raw_entries),
                },
                _TRANSFER_TIMEOUT_S,
            )
            page = answer.get("entries") if answer.get("ok") else None
            if not isinstance(page, list) or not answer.get("more") or not page:
                break
            raw_entries += page
        if not answer.get("ok"):
            code = answer.get("code")
            if code == "ENOBUFS":
                if self._handle.volume_name is None:  # a tmpfs mount: the engine cannot read it
                    raise TransferRefused(f"{what} holds too many entries to copy")
                return None
            if code == "ENOENT":
                raise PathNotFound(rel or ".")
            if code == "E2BIG":
                raise TransferRefused(f"{what} is larger than {cap // 1024} KiB")
            if code in ("ELOOP", "ENOTDIR", "EACCES", "EINVAL"):
                raise TransferRefused(f"{what}: {answer.get('error', 'refused')}")
            raise SandboxError(f"cannot copy out of the sandbox: {answer.get('error', '?')}")
        raw_entries += answer.get("entries") or []
        try:
            if len(raw_entries) <= INLINE_FILES:
                listing = parse_listing(raw_entries)
            else:
                listing = await off_loop(parse_listing, raw_entries)
        except ValueError as e:
            self._broken = "the sandbox supervisor answered garbage"
            raise SandboxError(self._broken, container_id=self.container_id) from e
        pieces: dict[int, list[bytes]] = {}
        refused = not skip_special and any(e.kind in ("l", "o") for e in listing)
        # When a link or device will be refused anyway, the files' bytes are not needed.
        for batch in [] if refused else read_plan(listing, rel):
            got = await self._request(read_request(listing, rel, batch), _TRANSFER_TIMEOUT_S)
            if not got.get("ok"):
                raise TransferRefused(f"{what}: {got.get('error', 'cannot read')}")
            data = got.get("data")
            if not isinstance(data, list) or len(data) != len(batch):
                self._broken = "the sandbox supervisor answered garbage"
                raise SandboxError(self._broken, container_id=self.container_id)
            for (i, _offset, n), encoded in zip(batch, data, strict=True):
                if not isinstance(encoded, str):
                    encoded = ""
                if len(encoded) < INLINE_BYTES:
                    piece = base64.b64decode(encoded)
                else:
                    piece = await off_loop(base64.b64decode, encoded)
                if len(piece) != n:  # nothing runs between executes: a file cannot change
                    raise TransferRefused(f"{what}: '{listing[i].name}' changed while read")
                pieces.setdefault(i, []).append(piece)
        read = sum(len(p) for parts in pieces.values() for p in parts)
        if len(listing) <= INLINE_FILES and read < INLINE_BYTES:
            return _vetted_listing(listing, pieces, what, cap, skip_special)
        return await off_loop(_vetted_listing, listing, pieces, what, cap, skip_special)


def _first_difference(a: bytes, b: bytes) -> int:
    """The index of the first byte where ``a`` and ``b`` differ (the shorter's length when one
    is the other's start); they must differ. Halving, so each step is one ``memcmp``."""
    low, high = 0, min(len(a), len(b))  # a[:low] == b[:low]; the difference is below high+1
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


async def copy_path(src: FileTransfers, path: str, dst: FileTransfers, directory: str) -> None:
    """Copy ``path`` (file or directory) of ``src`` into ``directory`` of ``dst``.

    It arrives under its last component. Nothing touches the host file system. Raises
    ``PathNotFound`` (source or destination directory missing), ``TransferRefused`` or
    ``SandboxError``.
    """
    data = await src.get_archive(path)
    await dst.put_archive(directory, data)
