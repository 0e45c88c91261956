"""The seccomp profile every sandbox runs under, shipped as ``orchestrator/sandbox/seccomp.json``.

The profile is an allowlist written for judged programs (``scripts/make_seccomp.py`` generates it
and says what it leaves out): io_uring, userfaultfd, bpf, perf_event_open, the key ring, ptrace,
namespaces, mounts and the like fail with EPERM.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["profile_json"]


@functools.cache
def profile_json() -> str:
    """The profile as compact JSON, the form the engine takes in ``seccomp=<json>``.

    Raises ``ValueError`` when the packaged file is missing its rules (a broken install).
    """
    text = resources.files("orchestrator.sandbox").joinpath("seccomp.json").read_text()
    doc = json.loads(text)
    if doc.get("defaultAction") != "SCMP_ACT_ERRNO" or not doc.get("syscalls"):
        raise ValueError("orchestrator/sandbox/seccomp.json is not the judge's allowlist profile")
    return json.dumps(doc, separators=(",", ":"))
