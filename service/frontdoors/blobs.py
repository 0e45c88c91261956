"""A content-addressed blob store: files under ``<data dir>/blobs`` named by the SHA-1 of their
content, metadata in SQLite.

A blob is known by its metadata hash (the SHA-1 of its name and content hash), as in the
executor API; the same file uploaded under the same name is the same blob. File I/O runs on a
thread pool the store owns; a file is written to a temporary name and renamed, so a crash never
leaves a partial blob under its hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from service.store import BlobRow, Database, Store

T = TypeVar("T")

HASH = re.compile(r"[0-9a-f]{40}")


def iso_time(ts: float | None) -> str | None:
    """``2015-09-09T18:45:22.983Z`` (UTC, milliseconds), None for None."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def blob_doc(row: BlobRow) -> dict[str, Any]:
    """A blob's metadata as the executor API shows it."""
    return {
        "name": row.name,
        "size": row.size,
        "mime": row.mime,
        "isPublic": False,
        "tags": [],
        "content": row.content,
        "contentType": "object",
        "lastModified": iso_time(row.last_modified),
    }


class BlobStore:
    def __init__(self, store: Store, root: Path) -> None:
        self._store = store
        self._root = root
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="blobs")

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _path(self, content_hash: str) -> Path:
        return self._root / content_hash[:2] / content_hash

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` (file I/O, archive work) on the store's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

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

    async def put(self, name: str, data: bytes, mime: str | None = None) -> BlobRow:
        """Store ``data`` as the blob ``name``; returns its metadata (the existing one when the
        same name and content were stored before)."""
        content_hash = hashlib.sha1(data).hexdigest()
        key = json.dumps({"name": name, "content": content_hash}, sort_keys=True)
        meta_hash = hashlib.sha1(key.encode()).hexdigest()
        await self.run(self._write, content_hash, data)
        guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
        row = BlobRow(meta_hash, name, len(data), mime or guessed, content_hash, time.time())
        await self._store.call(Database.put_blob, row)
        stored = await self._store.call(Database.get_blob, meta_hash)
        assert stored is not None
        return stored

    async def meta(self, blob_hash: str) -> BlobRow | None:
        if not HASH.fullmatch(blob_hash):
            return None
        return await self._store.call(Database.get_blob, blob_hash)

    async def read(self, blob_hash: str) -> tuple[BlobRow, bytes] | None:
        """A blob's metadata and content; None when unknown."""
        row = await self.meta(blob_hash)
        if row is None:
            return None
        data = await self.run(self._read, row.content)
        return None if data is None else (row, data)

    async def read_content(self, blob_hash: str) -> bytes | None:
        """The content of a blob (for ``blob:<hash>`` file URLs of missions)."""
        got = await self.read(blob_hash)
        return None if got is None else got[1]
