"""The exec API (seed 002) end to end: scripts and ZeroVM images POSTed to ``/v1/{account}``."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.service.conftest import StartJudge
from tests.service.support import ALICE

pytestmark = pytest.mark.docker

ACCOUNT = "/v1/AUTH_7fbcd8784f8843a180cf187bbb12e49c"
SCRIPT = b"""#!file://python2.7:python
import sys
print("Hello from ZeroVM!")
print("sys.platform is '%s'" % sys.platform)
"""
SYSTEM_MAP = b"""[{
    "name": "example",
    "exec": {
        "path": "file://python2.7:python",
        "args": "main.py"
    },
    "devices": [
        {"name": "python2.7"},
        {"name": "stdout"}
    ]
}]
"""
MYMATH = b"def add(a, b):\n    return a + b\n"
MAIN = b"""import mymath
a = 5
b = 6
the_sum = mymath.add(a, b)
print("%s + %s = %s" % (a, b, the_sum))
"""
CDR = re.compile(r"\d+\.\d{3}, \d+\.\d{3}, \d+\.\d\d \d+\.\d\d( \d+){8}")


def make_tar(files: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buf.getvalue()


async def post(
    session: aiohttp.ClientSession, url: str, ctype: str, body: bytes, token: str | None = ALICE
) -> tuple[int, bytes, Any]:
    headers = {"X-Zerovm-Execute": "1.0", "Content-Type": ctype}
    if token is not None:
        headers["X-Auth-Token"] = token
    async with session.post(url + ACCOUNT, data=body, headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers


async def test_post_a_python_script(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge()
    status, body, headers = await post(session, api.url, "application/python", SCRIPT)
    assert status == 200, body
    assert body == b"Hello from ZeroVM!\nsys.platform is 'linux'\n"
    assert headers["X-Nexe-Retcode"] == "0"
    assert headers["X-Nexe-Status"] == "ok."
    assert headers["X-Nexe-System"] == "script"
    assert CDR.fullmatch(headers["X-Nexe-Cdr-Line"]), headers["X-Nexe-Cdr-Line"]

    failing = b"#!file://python:python\nimport sys\nprint('bye')\nsys.exit(3)\n"
    status, body, headers = await post(session, api.url, "application/python", failing)
    assert (status, body) == (200, b"bye\n")
    assert headers["X-Nexe-Retcode"] == "3"


async def test_post_a_zerovm_image(start_judge: StartJudge, session: aiohttp.ClientSession) -> None:
    _, api = await start_judge()
    image = make_tar({"boot/system.map": SYSTEM_MAP, "main.py": MAIN, "mymath.py": MYMATH})
    status, body, headers = await post(session, api.url, "application/x-tar", image)
    assert status == 200, body
    assert body == b"5 + 6 = 11\n"
    assert headers["X-Nexe-Retcode"] == "0"
    assert headers["X-Nexe-Status"] == "ok."
    assert headers["X-Nexe-System"] == "example"
    assert CDR.fullmatch(headers["X-Nexe-Cdr-Line"]), headers["X-Nexe-Cdr-Line"]

    # Two nodes, one a program of the tarball: their outputs in order, headers per node.
    nodes = [
        {"name": "a", "exec": {"path": "file://python:python", "args": "main.py"}},
        {"name": "b", "exec": {"path": "file://bin/run.sh", "args": "'x y' z"}},
    ]
    image = make_tar(
        {
            "boot/system.map": json.dumps(nodes).encode(),
            "main.py": MAIN,
            "mymath.py": MYMATH,
            "bin/run.sh": b'#!/bin/sh\necho "$1|$2"\n',
        }
    )
    status, body, headers = await post(session, api.url, "application/x-tar", image)
    assert (status, body) == (200, b"5 + 6 = 11\nx y|z\n")
    assert headers["X-Nexe-System"] == "a,b"
    assert headers["X-Nexe-Retcode"] == "0,0"


@pytest.mark.parametrize(
    ("ctype", "body", "expected"),
    [
        ("application/python", b"print('no shebang')\n", "must start with a shebang"),
        ("application/python", b"#!file://perl:perl\nprint 1\n", "unknown interpreter"),
        ("application/x-tar", lambda p: make_tar({"main.py": MAIN}), "no 'boot/system.map'"),
        ("application/x-tar", lambda p: make_tar({"boot/system.map": b"{"}), "not valid JSON"),
        (
            "application/x-tar",
            lambda p: make_tar({"boot/system.map": b'[{"name": "x", "exec": {"pth": "a"}}]'}),
            "unknown key 'exec.pth'",
        ),
        (
            "application/x-tar",
            lambda p: make_tar(
                {"boot/system.map": b'[{"name": "x", "exec": {"path": "file://ruby:ruby"}}]'}
            ),
            "unknown interpreter 'file://ruby:ruby'",
        ),
        (
            "application/x-tar",
            lambda p: make_tar({"boot/system.map": SYSTEM_MAP, f"../../..{p}/x": b"x"}),
            "contains '..'",
        ),
        (
            "application/x-tar",
            lambda p: make_tar({"boot/system.map": SYSTEM_MAP, f"{p}/x": b"x"}),
            "is absolute",
        ),
        (
            "application/x-tar",
            lambda p: make_tar({"boot/system.map": SYSTEM_MAP}, links={"main.py": f"{p}/x"}),
            "is a link",
        ),
        ("application/x-tar", b"not a tar", "not a readable tar archive"),
    ],
    ids=[
        "no-shebang",
        "unknown-shebang",
        "no-map",
        "bad-json",
        "bad-shape",
        "unknown-interpreter",
        "dotdot",
        "absolute",
        "symlink",
        "not-tar",
    ],
)
async def test_bad_requests_say_why(
    start_judge: StartJudge,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    ctype: str,
    body: Any,
    expected: str,
) -> None:
    _, api = await start_judge()
    target = tmp_path / "target"
    target.mkdir()
    data = body(str(target)) if callable(body) else body
    status, raw, _ = await post(session, api.url, ctype, data)
    assert status == 400, raw
    assert expected in json.loads(raw)["error"]["message"]
    assert list(target.iterdir()) == []
    assert (await post(session, api.url, ctype, data, token=None))[0] == 401


async def test_only_execute_requests(
    start_judge: StartJudge, session: aiohttp.ClientSession
) -> None:
    _, api = await start_judge()
    headers = {"X-Auth-Token": ALICE, "Content-Type": "application/python"}
    async with session.post(api.url + ACCOUNT, data=SCRIPT, headers=headers) as resp:
        assert resp.status == 400
        assert "X-Zerovm-Execute" in (await resp.json())["error"]["message"]
    status, _, _ = await post(session, api.url, "text/plain", SCRIPT)
    assert status == 415
