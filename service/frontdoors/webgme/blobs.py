"""A content-addressed blob store as WebGME's blob server keeps one: files under
``<data dir>/blobs`` named by the SHA-1 of their content (in the database when the store keeps
files: many nodes), metadata in this door's tables (``repo``).

A blob is known by its metadata hash: the SHA-1 of its metadata document serialised the way
WebGME serialises it (``BlobMetadata.serialize`` then ``JSON.stringify``), so the same file or
artifact gets the same hash here and there. A file blob (``object``) names its content's hash; a
``complex`` artifact maps paths to file contents (``object``) or to other blobs (``softLink``).

Blobs belong to the tokens that uploaded or produced them: every read takes the token's hash and
answers as if the blob did not exist for any other token. Storage is still shared: the same
content is stored once whoever sent it. File I/O runs on a thread pool the store owns; a file is
written to a temporary name and renamed, so a crash never leaves a partial blob under its hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.paths import check_relative_path, has_control
from service.frontdoors.archives import (
    MAX_ENTRIES,
    MAX_UNPACKED_BYTES,
    ArchiveRefused,
    build_zip,
    read_zip,
    zip_member,
)
from service.frontdoors.webgme.mimes import mime_type
from service.frontdoors.webgme.repo import WebgmeRepo
from service.frontdoors.webgme.tables import BlobRef, BlobRow, SweepResult

T = TypeVar("T")

HASH = re.compile(r"[0-9a-f]{40}")
OBJECT, COMPLEX, SOFT_LINK = "object", "complex", "softLink"
MAX_METADATA_BYTES = 4 * 1024 * 1024
_MAX_LINK_DEPTH = 8


class BlobRefused(ValueError):
    """Metadata or a path the store will not take; the message says why (400)."""


class QuotaExceeded(Exception):
    """Storing this would put the token over its storage quota (413)."""


class BlobTooLarge(Exception):
    """An artifact too large to be zipped in memory (413)."""


def iso_time(ts: float | None) -> str | None:
    """``2015-09-09T18:45:22.983Z`` (UTC, milliseconds), None for None."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _js_json(doc: Any) -> str:
    """``JSON.stringify(doc)``: no spaces, non-ASCII as is."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _js_sorted(names: list[str]) -> list[str]:
    """JavaScript's default sort: by UTF-16 code units."""
    return sorted(names, key=lambda n: n.encode("utf-16-be", "surrogatepass"))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def metadata_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha1(_js_json(doc).encode("utf-8", "surrogatepass")).hexdigest()


def file_doc(name: str, size: int, content_hash: str) -> dict[str, Any]:
    """The metadata WebGME's ``putFile`` makes for a file."""
    return {
        "name": name,
        "size": size,
        "mime": mime_type(name) or "application/octet-stream",
        "isPublic": False,
        "tags": [],
        "content": content_hash,
        "contentType": OBJECT,
    }


def _entry_path(name: str) -> str:
    if not name or len(name) > 1024:
        raise BlobRefused(f"content: '{name[:80]}' is not a usable path")
    if has_control(name) or "\\" in name:
        raise BlobRefused(f"content: '{name[:80]}' holds a control character or a backslash")
    # The one path rule, and stored as given: an artifact names each file one way only.
    try:
        canonical = check_relative_path(name)
    except ValueError:
        canonical = None
    if canonical != name:
        raise BlobRefused(f"content: '{name[:80]}' must be a relative path without '.' or '..'")
    return name


def parse_metadata(raw: bytes) -> tuple[dict[str, Any], tuple[BlobRef, ...]]:
    """The normalised document of a complex artifact posted to ``createMetadata`` (as
    ``BlobMetadata`` normalises it) and what it points at. Raises ``BlobRefused``."""
    if len(raw) > MAX_METADATA_BYTES:
        raise BlobRefused(f"the metadata is larger than {MAX_METADATA_BYTES} bytes")
    try:
        given = json.loads(raw)
    except ValueError as e:
        raise BlobRefused(f"the metadata is not JSON: {e}") from None
    if not isinstance(given, dict):
        raise BlobRefused("the metadata must be a JSON object")
    kind = given.get("contentType") or OBJECT
    if kind != COMPLEX:
        raise BlobRefused(
            f"contentType: only '{COMPLEX}' artifacts can be created here, not '{kind}'"
            " (upload files with createFile)"
        )
    name = given.get("name")
    if not isinstance(name, str) or not name or len(name) > 255 or has_control(name):
        raise BlobRefused("name: must be a file name")
    size = given.get("size") or 0
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**53:
        raise BlobRefused("size: must be a non-negative integer")
    mime = given.get("mime") or ""
    tags = given.get("tags") or []
    if not isinstance(mime, str) or len(mime) > 255:
        raise BlobRefused("mime: must be a string")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or len(tags) > 100:
        raise BlobRefused("tags: must be a list of strings")
    is_public = given.get("isPublic") or False
    if not isinstance(is_public, bool):
        raise BlobRefused("isPublic: must be true or false")
    content = given.get("content")
    if not isinstance(content, dict):
        raise BlobRefused("content: must map paths to {content, contentType}")
    if len(content) > MAX_ENTRIES:
        raise BlobRefused(f"content: more than {MAX_ENTRIES} entries")
    refs: list[BlobRef] = []
    for path, entry in content.items():
        _entry_path(path)
        if not isinstance(entry, dict) or set(entry) != {"content", "contentType"}:
            raise BlobRefused(f"content['{path}']: must be {{content, contentType}}")
        target, target_kind = entry["content"], entry["contentType"]
        if not isinstance(target, str) or not HASH.fullmatch(target):
            raise BlobRefused(f"content['{path}']: hash '{str(target)[:60]}' is invalid")
        if target_kind == OBJECT:
            refs.append(BlobRef("content", target))
        elif target_kind == SOFT_LINK:
            refs.append(BlobRef("meta", target))
        else:
            raise BlobRefused(f"content['{path}']: contentType must be '{OBJECT}' or '{SOFT_LINK}'")
    for path in content:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in content:
                raise BlobRefused(f"content: '{'/'.join(parts[:i])}' is a file and a directory")
    doc = {
        "name": name,
        "size": size,
        "mime": mime,
        "isPublic": is_public,
        "tags": _js_sorted(list(tags)),
        "content": {path: content[path] for path in _js_sorted(list(content))},
        "contentType": COMPLEX,
    }
    return doc, tuple(refs)


def blob_doc(row: BlobRow) -> dict[str, Any]:
    """A blob's metadata as WebGME's blob server shows it (``lastModified`` added)."""
    if row.doc is not None:
        doc: dict[str, Any] = json.loads(row.doc)
    else:  # stored before metadata documents were kept: always a file
        doc = {
            "name": row.name,
            "size": row.size,
            "mime": row.mime,
            "isPublic": False,
            "tags": [],
            "content": row.content,
            "contentType": OBJECT,
        }
    doc["lastModified"] = iso_time(row.last_modified)
    return doc


@dataclass(frozen=True)
class BlobFile:
    """What ``view``/``download`` serve: a file name (for its type) and its bytes."""

    name: str
    data: bytes


class BlobStore:
    """Blobs of the tokens: metadata through ``repo``; file contents under ``root``, or in the
    database with ``contents_in_database`` (``Storage.blob_contents``: many nodes)."""

    def __init__(
        self,
        repo: WebgmeRepo,
        root: Path,
        *,
        contents_in_database: bool = False,
        quota_bytes: int | None = None,
    ) -> None:
        self._repo = repo
        self._contents = repo if contents_in_database else None
        self._root = root
        self._quota = quota_bytes
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="blobs")
        # Writers (uploads) share it; a sweep deleting files takes it alone, so a file being
        # stored again is never deleted between its write and its metadata row.
        self._writers = 0
        self._sweeping = False
        self._changed = asyncio.Condition()
        self.bytes_freed = 0
        self.files_freed = 0
        self._quota_locks: dict[str, asyncio.Lock] = {}

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _path(self, content_hash: str) -> Path:
        return self._root / content_hash[:2] / content_hash

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` (file I/O, archive work) on the store's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._sweeping)
            self._writers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._writers -= 1
                self._changed.notify_all()

    # File contents: on disk under ``root`` with SQLite (one node); in the database with
    # PostgreSQL, so that every node reads every blob without a shared file system.

    async def _put_content(self, content_hash: str, data: bytes) -> None:
        if (contents := self._contents) is not None:
            await contents.put_content(content_hash, data)
        else:
            await self.run(self._write, content_hash, data)

    async def _get_content(self, content_hash: str) -> bytes | None:
        if (contents := self._contents) is not None:
            return await contents.get_content(content_hash)
        return await self.run(self._read, content_hash)

    async def _delete_contents(self, content_hashes: tuple[str, ...]) -> tuple[int, int]:
        if (contents := self._contents) is not None:
            return await contents.delete_contents(content_hashes)
        return await self.run(self._delete, content_hashes)

    def _write(self, content_hash: str, data: bytes) -> None:
        path = self._path(content_hash)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{content_hash}.{os.getpid()}.{time.monotonic_ns()}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _read(self, content_hash: str) -> bytes | None:
        try:
            return self._path(content_hash).read_bytes()
        except FileNotFoundError:
            return None

    def _delete(self, content_hashes: tuple[str, ...]) -> tuple[int, int]:
        files = size = 0
        for content_hash in content_hashes:
            path = self._path(content_hash)
            try:
                size += path.stat().st_size
                path.unlink()
                files += 1
            except FileNotFoundError:
                continue
        return files, size

    def quota_lock(self, token_hash: str) -> asyncio.Lock:
        """Held from a token's quota check until what it allowed is stored, so concurrent
        uploads of one token cannot each see room for themselves (one lock per token)."""
        return self._quota_locks.setdefault(token_hash, asyncio.Lock())

    async def check_quota(self, token_hash: str, adding: int) -> None:
        """Raises ``QuotaExceeded`` when ``adding`` more bytes would not fit the quota."""
        if self._quota is None:
            return
        used = await self._repo.storage_used(token_hash)
        if used + adding > self._quota:
            raise QuotaExceeded(
                f"storing {adding} bytes would exceed this token's storage quota"
                f" ({used} of {self._quota} bytes used)"
            )

    async def put_file(
        self, token_hash: str, name: str, data: bytes, *, charge: bool = True
    ) -> BlobRow:
        """Store ``data`` as the file blob ``name`` for ``token_hash``; returns its metadata
        (the existing one when the same name and content were stored before).

        Raises ``QuotaExceeded`` (unless ``charge`` is False and the caller checked already).
        """
        content_hash = await self.run(_sha1, data)  # up to a request body: off the loop
        doc = file_doc(name, len(data), content_hash)
        meta_hash = metadata_hash(doc)
        if charge:
            async with self.quota_lock(token_hash):
                if await self._repo.get_blob(meta_hash, token_hash) is None:
                    await self.check_quota(token_hash, len(data))
                return await self._put_file(token_hash, data, doc, meta_hash)
        return await self._put_file(token_hash, data, doc, meta_hash)

    async def _put_file(
        self, token_hash: str, data: bytes, doc: dict[str, Any], meta_hash: str
    ) -> BlobRow:
        name, content_hash = doc["name"], doc["content"]
        row = BlobRow(
            meta_hash,
            name,
            len(data),
            doc["mime"],
            content_hash,
            time.time(),
            OBJECT,
            _js_json(doc),
        )
        async with self._writing():
            await self._put_content(content_hash, data)
            stored = await self._repo.put_blob(row, token_hash)
            contents = self._contents
            if contents is not None and not await contents.has_content(content_hash):
                # Another node's sweep removed the file between our two statements (the
                # writers' lock above is per process): the metadata now refers to it, so it
                # stays once stored again.
                await contents.put_content(content_hash, data)
            return stored

    async def put_metadata(
        self,
        token_hash: str,
        doc: dict[str, Any],
        refs: tuple[BlobRef, ...],
        *,
        charge: bool = True,
    ) -> BlobRow:
        """Store a complex artifact (a document from ``parse_metadata``) for ``token_hash``.

        Every file and blob it points at must be visible to the token. Raises ``BlobRefused``
        naming the first that is not, ``QuotaExceeded``.
        """
        for ref in refs:
            if ref.kind == "content":
                ok = await self._repo.owns_content(ref.child, token_hash)
            else:
                ok = await self._repo.get_blob(ref.child, token_hash) is not None
            if not ok:
                what = "file content" if ref.kind == "content" else "blob"
                raise BlobRefused(f"content: no {what} '{ref.child}' (upload it first)")
        text = _js_json(doc)
        meta_hash = metadata_hash(doc)
        if charge:
            async with self.quota_lock(token_hash):
                if await self._repo.get_blob(meta_hash, token_hash) is None:
                    await self.check_quota(token_hash, len(text))
                return await self._put_doc(token_hash, doc, refs, text, meta_hash)
        return await self._put_doc(token_hash, doc, refs, text, meta_hash)

    async def _put_doc(
        self,
        token_hash: str,
        doc: dict[str, Any],
        refs: tuple[BlobRef, ...],
        text: str,
        meta_hash: str,
    ) -> BlobRow:
        row = BlobRow(
            meta_hash,
            doc["name"],
            doc["size"],
            doc["mime"],
            _js_json(doc["content"]),
            time.time(),
            COMPLEX,
            text,
        )
        async with self._writing():
            return await self._repo.put_blob(row, token_hash, refs)

    async def put_artifact(
        self, token_hash: str, doc: dict[str, Any], *, charge: bool = True
    ) -> BlobRow:
        """Store a complex artifact the judge built (its entries already checked)."""
        doc = {**doc, "content": {k: doc["content"][k] for k in _js_sorted(list(doc["content"]))}}
        refs = tuple(
            BlobRef("content" if e["contentType"] == OBJECT else "meta", e["content"])
            for e in doc["content"].values()
        )
        return await self.put_metadata(token_hash, doc, refs, charge=charge)

    async def meta(self, token_hash: str, blob_hash: str) -> BlobRow | None:
        """A blob's metadata, None when unknown or not visible to the token."""
        if not HASH.fullmatch(blob_hash):
            return None
        return await self._repo.get_blob(blob_hash, token_hash)

    async def listing(self, token_hash: str) -> bytes:
        """The JSON of every blob the token sees, keyed by hash (built off the loop)."""
        rows = await self._repo.list_blobs(token_hash)
        return await self.run(lambda: json.dumps({r.hash: blob_doc(r) for r in rows}).encode())

    async def _object_bytes(self, row: BlobRow, depth: int = 0) -> bytes | None:
        """The bytes of a file blob, following soft links (stored blobs, any owner)."""
        if row.content_type == OBJECT:
            return await self._get_content(row.content)
        if row.content_type == SOFT_LINK and depth < _MAX_LINK_DEPTH:
            target = await self._repo.get_blob(row.content)
            return None if target is None else await self._object_bytes(target, depth + 1)
        return None

    async def _entry_bytes(self, path: str, entry: dict[str, Any]) -> bytes:
        if entry["contentType"] == OBJECT:
            data = await self._get_content(entry["content"])
        else:
            target = await self._repo.get_blob(entry["content"])
            data = None if target is None else await self._object_bytes(target)
        if data is None:
            raise LookupError(f"the content of '{path}' is gone")
        return data

    async def artifact_files(self, row: BlobRow) -> dict[str, bytes]:
        """The files of a complex artifact (path -> bytes), at most ``MAX_UNPACKED_BYTES``.

        Raises ``BlobTooLarge`` and ``LookupError`` (a file of it is gone).
        """
        content: dict[str, Any] = await self.run(json.loads, row.content)
        files: dict[str, bytes] = {}
        total = 0
        for path, entry in content.items():
            data = await self._entry_bytes(path, entry)
            total += len(data)
            if total > MAX_UNPACKED_BYTES:
                raise BlobTooLarge(
                    f"the artifact holds more than {MAX_UNPACKED_BYTES} bytes; fetch its files"
                    " one by one"
                )
            files[path] = data
        return files

    async def open(self, token_hash: str, blob_hash: str, subpath: str = "") -> BlobFile | None:
        """What ``view``/``download`` of ``blob_hash[/subpath]`` serve: a file, a file of an
        artifact, or a whole artifact as a zip. None when the blob (or the path in it) is
        unknown to the token. Raises ``BlobTooLarge``."""
        row = await self.meta(token_hash, blob_hash)
        if row is None:
            return None
        if row.content_type == COMPLEX:
            content: dict[str, Any] = await self.run(json.loads, row.content)
            if subpath:
                entry = content.get(subpath)
                if not isinstance(entry, dict):
                    return None
                try:
                    data = await self._entry_bytes(subpath, entry)
                except LookupError:
                    return None
                return BlobFile(subpath.rsplit("/", 1)[-1], data)
            try:
                files = await self.artifact_files(row)
            except LookupError:
                return None
            return BlobFile(row.name, await self.run(build_zip, list(files.items())))
        whole = await self._object_bytes(row)
        if whole is None:
            return None
        if subpath:
            return await self._zip_member(row, whole, subpath)
        return BlobFile(row.name, whole)

    async def _zip_member(self, row: BlobRow, data: bytes, subpath: str) -> BlobFile | None:
        # Results stored before artifacts were zips: a path reads a file of the zip.
        try:
            member = await self.run(lambda: zip_member(data, subpath, max_bytes=MAX_UNPACKED_BYTES))
        except ArchiveRefused as e:
            raise BlobRefused(str(e)) from None
        return None if member is None else BlobFile(subpath.rsplit("/", 1)[-1], member)

    async def job_files(self, token_hash: str, blob_hash: str) -> dict[str, bytes] | None:
        """The files of a job definition: a complex artifact's files or a zip's. None when the
        token sees no such blob. Raises ``BlobRefused`` (a bad zip), ``BlobTooLarge``."""
        row = await self.meta(token_hash, blob_hash)
        if row is None:
            return None
        if row.content_type == COMPLEX:
            try:
                return await self.artifact_files(row)
            except LookupError as e:
                raise BlobRefused(str(e)) from None
        data = await self._object_bytes(row)
        if data is None:
            return None
        try:
            return await self.run(read_zip, data)
        except ArchiveRefused as e:
            raise BlobRefused(str(e)) from None

    async def read_content(self, token_hash: str, blob_hash: str) -> bytes | None:
        """The bytes of a blob the token sees (a complex artifact as a zip), for ``blob:``
        file URLs of missions; None when unknown or too large."""
        try:
            got = await self.open(token_hash, blob_hash)
        except (BlobTooLarge, BlobRefused):
            return None
        return None if got is None else got.data

    def reader_for(self, token_hash: str) -> Callable[[str], Any]:
        """``read_content`` bound to one token (a mission's ``blob_reader``)."""

        async def read(blob_hash: str) -> bytes | None:
            return await self.read_content(token_hash, blob_hash)

        return read

    async def sweep(self, cutoff: float) -> SweepResult:
        """Apply the retention period: forget what ended before ``cutoff`` and delete the files
        nothing refers to any more (counted in ``bytes_freed``)."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self._sweeping)
            self._sweeping = True
            await self._changed.wait_for(lambda: self._writers == 0)
        try:
            result = await self._repo.sweep(cutoff)
            files, size = await self._delete_contents(result.contents)
            self.files_freed += files
            self.bytes_freed += size
            return result
        finally:
            async with self._changed:
                self._sweeping = False
                self._changed.notify_all()
