"""The shipped seccomp profile is the one the generator writes, and it refuses what it says."""

from __future__ import annotations

import json
from types import ModuleType

from orchestrator.sandbox.sandbox import SandboxConfig
from orchestrator.sandbox.seccomp import profile_json
from tests.scriptfile import REPO, load


def generator() -> ModuleType:
    return load("scripts/make_seccomp.py")


def test_the_committed_profile_is_what_the_generator_writes() -> None:
    assert (REPO / "orchestrator/sandbox/seccomp.json").read_text() == generator().render()


def test_refused_calls_are_not_allowed_by_any_rule() -> None:
    doc = json.loads(profile_json())
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {
        name
        for rule in doc["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }
    for name in ("io_uring_setup", "io_uring_enter", "userfaultfd", "bpf", "perf_event_open"):
        assert name not in allowed
    assert set(generator().BLOCKED).isdisjoint(allowed)
    conditional = {n for r in doc["syscalls"] if r.get("args") for n in r["names"]}
    assert conditional == {"clone", "personality"}


def test_every_sandbox_gets_the_profile_by_default() -> None:
    assert SandboxConfig().seccomp_profile == profile_json()
