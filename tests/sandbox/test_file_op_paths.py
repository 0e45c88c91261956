"""The supervisor's file ops (put, read, list) on paths a hostile or buggy caller may send: an
absolute path is taken under /box (never the container's root), ``..`` is refused wherever it
stands, and a NUL is refused before any path is looked at. Real engine, raw protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.sandbox.sandbox import ExecRequest, Sandbox, SandboxRuntime
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker


@pytest.fixture
async def box(runtime: SandboxRuntime) -> AsyncIterator[Sandbox]:
    async with runtime.sandbox(DEFAULT_IMAGE) as b:
        assert b.file_ops, f"{DEFAULT_IMAGE} has a protocol {b.protocol} supervisor"
        out = await b.run(
            ExecRequest(argv=("sh", "-c", "mkdir d && echo hi > d/f && echo top > f"))
        )
        assert out.meta.status == "", out.meta
        yield b


async def ask(box: Sandbox, request: dict[str, Any]) -> dict[str, Any]:
    return await box._request(request, 10)


def read(path: str, length: int = 64) -> dict[str, Any]:
    return {"op": "read", "files": [{"path": path, "length": length}]}


def listing(path: str) -> dict[str, Any]:
    return {"op": "list", "path": path, "max_bytes": 100_000}


def put(path: str) -> dict[str, Any]:
    return {"op": "put", "entries": [{"path": path, "data": "b3duZWQ="}]}  # "owned"


async def test_absolute_paths_are_taken_under_box(box: Sandbox) -> None:
    # /etc/passwd and /tmp exist in the container; under /box they do not.
    for request in (read("/etc/passwd"), listing("/etc"), put("/tmp/x")):
        answer = await ask(box, request)
        assert (answer["ok"], answer["code"]) == (False, "ENOENT"), (request, answer)
    assert (await ask(box, read("/f")))["ok"] is True  # /f is /box/f
    out = await box.run(
        ExecRequest(
            argv=("sh", "-c", "ls -A /tmp; cat /box/f"), stdout=".o", record_stdout_bytes=99
        )
    )
    assert out.stdout == b"top\n", "nothing was written outside /box"


@pytest.mark.parametrize("path", ["..", "../etc/passwd", "d/..", "d/../f", "./../box/f"])
async def test_dot_dot_is_refused_on_read_list_and_put(box: Sandbox, path: str) -> None:
    for request in (read(path), listing(path), put(path)):
        answer = await ask(box, request)
        assert (answer["ok"], answer.get("code")) == (False, "EINVAL"), (request, answer)
        assert f"'{path}'" in answer["error"]


@pytest.mark.parametrize("path", ["f\x00", "\x00", "d\x00/f", "d/f\x00../../etc/passwd"])
async def test_a_nul_in_a_path_is_an_invalid_request(box: Sandbox, path: str) -> None:
    for request in (read(path), listing(path), put(path)):
        answer = await ask(box, request)
        assert answer["ok"] is False
        assert "invalid request" in answer["error"]
        assert "without NUL characters" in answer["error"], (request, answer)
    # The sandbox goes on answering after the refusals.
    assert (await ask(box, read("d/f")))["ok"] is True
