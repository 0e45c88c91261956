"""Files over the supervisor channel on the real engine: as the sandbox user, never through a
link, every byte capped. Needs an image whose supervisor speaks protocol version 2."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import AsyncIterator

import pytest

from orchestrator.errors import JudgeError, PathNotFound, TransferRefused
from orchestrator.sandbox.sandbox import ExecRequest, Sandbox, SandboxRuntime, copy_path
from orchestrator.sandbox.tar import build_tar
from tests.conftest import DEFAULT_IMAGE

pytestmark = pytest.mark.docker


@pytest.fixture
async def box(runtime: SandboxRuntime) -> AsyncIterator[Sandbox]:
    async with runtime.sandbox(DEFAULT_IMAGE) as b:
        if not b.file_ops:
            pytest.skip(f"{DEFAULT_IMAGE} has a protocol {b.protocol} supervisor (no file ops)")
        yield b


async def sh(box: Sandbox, script: str) -> str:
    out = await box.run(
        ExecRequest(argv=("sh", "-c", script), stdout=".o", record_stdout_bytes=4096)
    )
    assert out.meta.status == "", out.meta
    return out.stdout.decode()


def members(data: bytes) -> dict[str, tuple[str, int, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        out = {}
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            out[m.name] = ("d" if m.isdir() else "f", m.mode, f.read() if f else b"")
        return out


async def test_files_round_trip_with_modes_and_owner(box: Sandbox) -> None:
    big = os.urandom(1536 * 1024)  # three requests' worth
    await box.put_files({"in/a.txt": b"3 4\n", "big.bin": big, "empty": b""})
    owners = await sh(box, "stat -c '%u %a' in in/a.txt big.bin empty")
    assert owners == "10001 755\n10001 644\n10001 644\n10001 644\n"
    await sh(box, "chmod 755 in/a.txt && mkdir in/sub")
    got = members(await box.get_archive("in"))
    assert got == {
        "in": ("d", 0o755, b""),
        "in/a.txt": ("f", 0o755, b"3 4\n"),
        "in/sub": ("d", 0o755, b""),
    }
    assert members(await box.get_archive("big.bin"))["big.bin"][2] == big
    whole = members(await box.get_archive(""))
    assert {"box", "box/in/a.txt", "box/big.bin", "box/empty"} <= set(whole)


async def test_copy_keeps_the_exec_bit(box: Sandbox, runtime: SandboxRuntime) -> None:
    await sh(box, "printf '#!/bin/sh\\necho ran\\n' > run && chmod 755 run")
    async with runtime.sandbox(DEFAULT_IMAGE) as other:
        await copy_path(box, "run", other, "")
        assert await sh(other, "./run") == "ran\n"


async def test_writes_never_go_through_a_link(box: Sandbox) -> None:
    await sh(box, "ln -s /tmp t && mkdir d && ln -s /tmp d/t")
    with pytest.raises(JudgeError, match=r"is a link|symbolic link"):
        await box.put_files({"t/x": b"owned"})
    with pytest.raises(JudgeError, match=r"is a link|symbolic link"):
        await box.put_archive("d/t", build_tar({"x": b"owned"}))
    assert await sh(box, "ls -A /tmp") == ""
    # A link at the very path is replaced, not written through.
    await sh(box, "ln -s /tmp/y y")
    await box.put_files({"y": b"mine"})
    assert await sh(box, "test -L y || cat y; ls -A /tmp") == "mine"


async def test_reads_never_go_through_a_link(box: Sandbox) -> None:
    await sh(box, "ln -s /etc e && ln -s /etc/passwd p && mkfifo f && mkdir d && ln -s .. d/up")
    with pytest.raises(TransferRefused, match=r"is a link|symbolic link"):
        await box.get_archive("e/passwd")
    with pytest.raises(TransferRefused, match=r"'p' is a link \(to '/etc/passwd'\)"):
        await box.get_archive("p")
    with pytest.raises(TransferRefused, match="'d/up' is a link"):
        await box.get_archive("d")
    with pytest.raises(TransferRefused, match="'f' is not a regular file"):
        await box.get_archive("f")
    assert set(members(await box.get_archive("d", skip_special=True))) == {"d"}
    with pytest.raises(PathNotFound):
        await box.get_archive("missing/x")


async def test_the_supervisor_caps_and_refuses(box: Sandbox) -> None:
    await sh(box, "head -c 1000 /dev/zero > f && mkdir -p d && ln -s /etc d/l")
    listed = await box._request({"op": "list", "path": "f", "max_bytes": 999}, 10)
    assert (listed["ok"], listed["code"]) == (False, "E2BIG")
    read = await box._request({"op": "read", "files": [{"path": "f", "length": 1 << 20}]}, 10)
    assert read["ok"] is False
    assert "invalid request" in read["error"]
    dots = await box._request({"op": "put", "entries": [{"path": "../x", "data": ""}]}, 10)
    assert (dots["ok"], dots["code"]) == (False, "EINVAL")
    through = await box._request({"op": "read", "files": [{"path": "d/l/passwd", "length": 9}]}, 10)
    assert (through["ok"], through["code"]) == (False, "ELOOP")
    # The sandbox goes on answering after refusals.
    assert await sh(box, "echo fine") == "fine\n"


async def test_box_is_a_capped_tmpfs_without_a_volume(
    box: Sandbox, runtime: SandboxRuntime, owner: str
) -> None:
    mount = (await sh(box, "grep ' /box ' /proc/mounts")).split()
    assert mount[2] == "tmpfs"
    options = mount[3].split(",")
    assert {"nosuid", "nodev", f"size={runtime.config.box_kib}k"} <= set(options)
    assert "noexec" not in options  # compiled programs run from /box
    assert await runtime.adapter.count_owned(owner) == (1, 0)
    # The cap holds: writing past it fails inside the sandbox, not on the host.
    out = await box.run(
        ExecRequest(argv=("sh", "-c", f"head -c {runtime.config.box_kib + 1}k /dev/zero > f"))
    )
    assert out.meta.status == "RE"


async def test_the_supervisor_writes_the_meta_file_as_the_runner_would(box: Sandbox) -> None:
    out = await box.run(ExecRequest(argv=("sh", "-c", "exit 3"), meta_file="m/meta"))
    assert out.meta_file_error is not None
    assert "No such file" in out.meta_file_error  # no directory is made for it
    await sh(box, "mkdir m && ln -s /tmp/x m/link && mkdir m/dir")
    out = await box.run(ExecRequest(argv=("sh", "-c", "exit 3"), meta_file="m/meta"))
    assert out.meta_file_error == ""
    written = (await sh(box, "cat m/meta")).encode()
    assert written == json.dumps(out.meta.to_dict()).encode()
    assert out.meta.message == "exited with code 3"
    linked = await box.run(ExecRequest(argv=("true",), meta_file="m/link"))
    assert linked.meta_file_error == "cannot write 'm/link': is a symbolic link (refused)"
    into_dir = await box.run(ExecRequest(argv=("true",), meta_file="m/dir"))
    assert "Is a directory" in (into_dir.meta_file_error or "")
    assert await sh(box, "ls -A /tmp") == ""
