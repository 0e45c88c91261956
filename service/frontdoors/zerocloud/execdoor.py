"""The exec API: POST a Python script or a "ZeroVM image" tarball, get its stdout.

The request becomes a mission of one execute per node of ``boot/system.map`` (or one for a
script); the handler waits for it and answers with the nodes' stdout and ZeroCloud's
``X-Nexe-*`` headers. Its files live only in memory: a mission interrupted by a restart is failed,
since nobody waits for it any more.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from orchestrator.run.runner import MissionIO
from orchestrator.sandbox.tar import single_file
from service.frontdoors.archives import ArchiveRefused, read_tar
from service.store import MissionRow

KIND = "exec"
SCRIPT = "script.py"
SYSTEM_MAP = "boot/system.map"
NO_CALLBACK = "http://exec.invalid/"
OUTPUT_LIMIT_KIB = 16 * 1024  # a response body holds at most this much stdout per node

# ZeroVM's system images, by "<image>:<program>": all run the default image's python3.
INTERPRETERS: dict[str, list[str]] = {
    "python2.7:python": ["python3"],
    "python:python": ["python3"],
    "python3:python": ["python3"],
}

_NODE_KEYS = {"name", "exec", "devices", "connect", "file_list", "count", "replicate", "attach"}
_EXEC_KEYS = {"path", "args", "env", "name"}


class ExecRefused(ValueError):
    """A script or image the exec API cannot run; the message says why (400)."""


def stdout_name(i: int) -> str:
    return f".zvm-stdout-{i}"


def _interpreter(path: str, where: str) -> list[str] | None:
    """The command of a ``file://<image>:<program>`` path; None when it is a file path."""
    if not path.startswith("file://"):
        return None
    target = path[len("file://") :]
    if ":" not in target:
        return None
    if target not in INTERPRETERS:
        known = ", ".join(f"file://{k}" for k in INTERPRETERS)
        raise ExecRefused(f"{where}: unknown interpreter '{path}' (known: {known})")
    return INTERPRETERS[target]


def _execute(i: int, name: str, command: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "command": command,
        "stdout": stdout_name(i),
        "stderr": f".zvm-stderr-{i}",
        "meta": f".zvm-meta-{i}",
        "output_limit": OUTPUT_LIMIT_KIB,
        "record": {"enable": False},
    }


def script_mission(body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The mission and files of a script whose shebang names its interpreter."""
    first = body.split(b"\n", 1)[0].strip()
    if not first.startswith(b"#!"):
        raise ExecRefused(
            "the script must start with a shebang naming its interpreter, e.g. "
            "'#!file://python2.7:python'"
        )
    path = first[2:].decode(errors="replace").strip()
    command = _interpreter(path, "shebang")
    if command is None:
        raise ExecRefused(
            f"shebang: '{path}' is not an interpreter (expected file://<image>:<program>, "
            "e.g. file://python2.7:python)"
        )
    mission = {
        "return": {"url": NO_CALLBACK},
        "prepare": {"execute": [_execute(0, "script", [*command, SCRIPT])]},
    }
    return mission, {SCRIPT: body}


def _node_execute(i: int, node: Any, files: dict[str, bytes]) -> dict[str, Any]:
    where = f"{SYSTEM_MAP}: node {i}"
    if not isinstance(node, dict):
        raise ExecRefused(f"{where}: must be an object")
    unknown = sorted(set(node) - _NODE_KEYS)
    if unknown:
        raise ExecRefused(f"{where}: unknown key '{unknown[0]}'")
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise ExecRefused(f"{where}: 'name' must be a non-empty string")
    spec = node.get("exec")
    if not isinstance(spec, dict):
        raise ExecRefused(f"{where} ('{name}'): 'exec' must be an object with 'path'")
    unknown = sorted(set(spec) - _EXEC_KEYS)
    if unknown:
        raise ExecRefused(f"{where} ('{name}'): unknown key 'exec.{unknown[0]}'")
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise ExecRefused(f"{where} ('{name}'): 'exec.path' must be a non-empty string")
    raw_args = spec.get("args", "")
    if not isinstance(raw_args, str):
        raise ExecRefused(f"{where} ('{name}'): 'exec.args' must be a string")
    try:
        args = shlex.split(raw_args)
    except ValueError as e:
        raise ExecRefused(f"{where} ('{name}'): 'exec.args' cannot be split: {e}") from None
    devices = node.get("devices", [])
    if not isinstance(devices, list) or not all(
        isinstance(d, dict) and isinstance(d.get("name"), str) for d in devices
    ):
        raise ExecRefused(f"{where} ('{name}'): 'devices' must be a list of {{\"name\": ...}}")
    command = _interpreter(path, f"{where} ('{name}'): exec.path")
    if command is None:
        rel = path[len("file://") :] if path.startswith("file://") else path
        rel = rel.lstrip("/")
        if rel not in files:
            raise ExecRefused(
                f"{where} ('{name}'): exec.path '{path}' is neither a known interpreter nor a "
                "file of the tarball"
            )
        # Files arrive without their modes: make the program executable, then run it.
        command = ["sh", "-c", 'chmod u+x "$0" && exec "$0" "$@"', f"./{rel}"]
    return _execute(i, name, [*command, *args])


def image_mission(body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The mission and files of a ZeroVM image (a tar with ``boot/system.map``)."""
    try:
        files = read_tar(body, "the tarball")
    except ArchiveRefused as e:
        raise ExecRefused(str(e)) from None
    raw = files.get(SYSTEM_MAP)
    if raw is None:
        raise ExecRefused(f"the tarball has no '{SYSTEM_MAP}'")
    try:
        nodes = json.loads(raw)
    except ValueError as e:
        raise ExecRefused(f"{SYSTEM_MAP} is not valid JSON: {e}") from None
    if isinstance(nodes, dict):
        nodes = [nodes]
    if not isinstance(nodes, list) or not nodes:
        raise ExecRefused(f"{SYSTEM_MAP} must be a non-empty list of nodes")
    executes = [_node_execute(i, node, files) for i, node in enumerate(nodes)]
    mission = {"return": {"url": NO_CALLBACK}, "prepare": {"execute": executes}}
    return mission, files


def read_stdout(collected: bytes | None) -> bytes:
    """The content of a one-file tar read back from the sandbox (b"" when there is none)."""
    return single_file(collected)


def _status(meta: dict[str, Any]) -> str:
    status = meta.get("status", "")
    if status == "" or (status == "RE" and not meta.get("signal")):
        return "ok."
    return f"{status}: {meta.get('message', '')}".replace(",", ";").strip()


def nexe_headers(
    executes: list[dict[str, Any]], outputs: list[bytes], total_s: float
) -> dict[str, str]:
    """ZeroCloud's aggregating ``X-Nexe-*`` headers: one comma-separated value per node.

    The CDR line is ``<total s>, <node s>, <node accounting>, ...`` with the accounting
    ``<sys> <user> <reads> <rbytes> <writes> <wbytes> <nreads> <nrbytes> <nwrites> <nwbytes>``;
    the sandbox measures CPU time as a whole, reported as user time (sys 0.00); disk and network
    counters are 0 except the bytes written to stdout.
    """
    metas = [e["meta"] for e in executes]
    cdr = [f"{total_s:.3f}"]
    for meta, out in zip(metas, outputs, strict=True):
        user = meta.get("cpu-time-usage", 0) / 1000
        node_s = meta.get("real-time-usage", 0) / 1000
        writes = 1 if out else 0
        cdr.append(f"{node_s:.3f}")
        cdr.append(f"0.00 {user:.2f} 0 0 {writes} {len(out)} 0 0 0 0")

    def retcode(meta: dict[str, Any]) -> str:
        code = meta.get("exit-code")
        if code is None:
            return str(128 + meta["signal"]) if meta.get("signal") else "0"
        return str(code)

    return {
        "X-Nexe-System": ",".join(e["name"] for e in executes),
        "X-Nexe-Status": ",".join(_status(m) for m in metas),
        "X-Nexe-Retcode": ",".join(retcode(m) for m in metas),
        "X-Nexe-Etag": ",".join("disabled" for _ in metas),
        "X-Nexe-Validation": ",".join("0" for _ in metas),
        "X-Nexe-Cdr-Line": ", ".join(cdr),
    }


class ExecDoor:
    """The exec API's ``FrontDoor``: its files are those handed to ``submit`` in this process."""

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return given  # None after a restart: the request that waited for it is gone

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        return None  # the handler waiting for the mission reads its MissionIO
