"""The blob routes as WebGME's BlobClient uses them: createMetadata, view and download with and
without a trailing slash or a sub-path, types and attachments by file name."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import aiohttp

from tests.frontdoors.conftest import AUTH
from tests.service.conftest import StartJudge


async def test_artifacts_view_and_download(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge()
    url = f"{api.url}/rest/blob"
    files = {"notes.txt": b"hello\n", "data.bin": b"\x00\x01", "café.json": b'{"a": 1}'}
    hashes = {}
    for name, data in files.items():
        async with session.post(f"{url}/createFile/{name}", data=data, headers=AUTH) as resp:
            assert resp.status == 200
            [(hashes[name], meta)] = (await resp.json()).items()
        assert meta["content"] == hashlib.sha1(data).hexdigest()
    doc = {
        "name": "bundle.zip",
        "size": 99,
        "mime": "application/zip",
        "tags": ["b", "a"],
        "contentType": "complex",
        "content": {
            "sub/dir/notes.txt": {"content": hashlib.sha1(b"hello\n").hexdigest(),
                                  "contentType": "object"},
            "data.bin": {"content": hashes["data.bin"], "contentType": "softLink"},
            "café.json": {"content": hashes["café.json"], "contentType": "softLink"},
        },
    }  # fmt: skip
    async with session.post(f"{url}/createMetadata/", data=json.dumps(doc), headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        [(bundle, meta)] = (await resp.json()).items()
    assert list(meta["content"]) == ["café.json", "data.bin", "sub/dir/notes.txt"]
    assert meta["tags"] == ["a", "b"]
    assert meta["contentType"] == "complex"
    # Key order and types as WebGME's serialisation: saving it again is the same artifact.
    async with session.post(f"{url}/createMetadata", data=json.dumps(meta), headers=AUTH) as resp:
        assert list(await resp.json()) == [bundle]

    cases = {
        f"view/{hashes['notes.txt']}": ("text/plain", None, b"hello\n"),
        f"download/{hashes['notes.txt']}": ("text/plain", 'attachment; filename="notes.txt"', None),
        f"view/{hashes['data.bin']}": ("application/octet-stream", "attachment", b"\x00\x01"),
        f"view/{bundle}/sub%2Fdir%2Fnotes.txt": ("text/plain", None, b"hello\n"),
        f"view/{bundle}/sub/dir/notes.txt": ("text/plain", None, b"hello\n"),
        f"download/{bundle}/data.bin": ("application/octet-stream", "attachment", b"\x00\x01"),
        f"view/{bundle}/caf%C3%A9.json": ("application/json", None, b'{"a": 1}'),
        f"download/{bundle}/café.json": ("application/json", "UTF-8''caf%C3%A9.json", None),
        f"download/{bundle}/": ("application/zip", 'filename="bundle.zip"', None),
        f"view/{bundle}": ("application/zip", "attachment", None),
    }  # fmt: skip
    for path, (ctype, disposition, body) in cases.items():
        async with session.get(f"{url}/{path}", headers=AUTH) as resp:
            assert resp.status == 200, (path, await resp.text())
            assert resp.content_type == ctype, path
            got = resp.headers.get("Content-Disposition")
            if disposition is None:
                assert got is None, path
            else:
                assert got is not None, path
                assert disposition in got, (path, got)
            data = await resp.read()
        if body is not None:
            assert data == body, path
    async with session.get(f"{url}/download/{bundle}", headers=AUTH) as resp:
        archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert {n: archive.read(n) for n in archive.namelist()} == {
        "café.json": b'{"a": 1}',
        "data.bin": b"\x00\x01",
        "sub/dir/notes.txt": b"hello\n",
    }
    for path in (f"view/{bundle}/nope.txt", f"view/{bundle}/sub", f"view/{'0' * 40}", "view/xyz"):
        async with session.get(f"{url}/{path}", headers=AUTH) as resp:
            assert resp.status == 404, path
