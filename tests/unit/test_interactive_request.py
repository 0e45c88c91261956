"""Interactive execute requests and runtime settings without an engine: the wire format,
to a supervisor that does not speak it."""

from __future__ import annotations

from typing import Any, cast

from orchestrator.sandbox.sandbox import (
    ExecRequest,
    InteractorRequest,
    Sandbox,
    SandboxConfig,
    SandboxRuntime,
)


def test_the_interactor_goes_on_the_wire_with_its_own_limits() -> None:
    req = ExecRequest(
        argv=("./a",),
        cpu_time_ms=1000,
        memory_kib=1024,
        stderr="e",
        interactor=InteractorRequest(
            argv=("./i",), cpu_time_ms=2000, memory_kib=2048, private=("s",)
        ),
    )
    wire = req.to_wire()
    assert wire["stdin"] == wire["stdout"] == ""
    assert wire["interactor"] == {
        "argv": ["./i"],
        "cpu_time_ms": 2000,
        "wall_time_ms": 3000,
        "memory_kib": 2048,
        "output_kib": 262144,
        "stderr": "",
        "record_stderr": 0,
        "private": ["s"],
    }
    # The sandbox holds both; the answer may take both real-time limits.
    assert req.fence_memory_kib == 1024 + 2048
    assert req.answer_within_s == 1.5 + 3.0
    assert "interactor" not in ExecRequest(argv=("./a",)).to_wire()


async def test_an_old_supervisor_gets_no_interactive_execute() -> None:
    runtime = SandboxRuntime(cast(Any, None), SandboxConfig())
    box = Sandbox(runtime, cast(Any, None), "old/image", runtime.config.fence_bytes(65536))
    box.closed = True  # any request would raise: the refusal must come first
    out = await box.run(ExecRequest(argv=("./a",), interactor=InteractorRequest(argv=("./i",))))
    assert out.meta.status == "SE"
    assert "old/image" in out.meta.message
    assert out.interactor is not None
    assert out.interactor.meta.status == "SE"


def test_runsc_sandboxes_get_room_for_gvisors_threads() -> None:
    config = SandboxConfig(pids_limit=128)
    assert config.pids_for(None) == config.pids_for("runc") == 128
    assert config.pids_for("runsc") == 1024
    assert SandboxConfig(pids_limit=4096).pids_for("runsc") == 4096
