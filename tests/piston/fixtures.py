"""Runtimes and settings the Piston door's unit tests share (no registry, no engine)."""

from __future__ import annotations

from typing import Any

from service.frontdoors.piston.runtimes import PistonRuntime
from service.frontdoors.piston.settings import PistonSettings

PYTHON = PistonRuntime(
    language="python",
    version="3.11.2",
    aliases=("py", "py3", "python3"),
    runtime=None,
    image="judge/python3",
    source_file="script.py",
    run=("python3", "{file}"),
    language_id="python3",
)
C = PistonRuntime(
    language="c",
    version="12.2.0",
    aliases=("gcc",),
    runtime="gcc",
    image="judge/default",
    source_file="main.c",
    compile=("gcc", "-x", "c", "-O2", "-o", "a.out", "{file}", "-lm"),
    run=("./a.out",),
    language_id="c",
    compile_limits={"memory_limit": 524288, "time_limit": 10000},
)
JAVA = PistonRuntime(
    language="java",
    version="17.0.9",
    aliases=(),
    runtime=None,
    image="judge/java",
    source_file="Main.java",
    compile=("javac", "{file}"),
    run=("java", "-cp", ".", "{stem}"),
    language_id="java",
)
RUNTIMES = (PYTHON, C, JAVA)


def settings(**changes: Any) -> PistonSettings:
    """Settings as a deployment without ``JUDGE_PISTON_*`` variables has them."""
    return PistonSettings(_env_file=None, **changes)  # type: ignore[call-arg]


def body(**changes: Any) -> dict[str, Any]:
    """A valid execute body (Python, one file), changed by ``changes``."""
    doc: dict[str, Any] = {
        "language": "python",
        "version": "3.11.2",
        "files": [{"name": "main.py", "content": "print(1)"}],
    }
    doc.update(changes)
    return doc


def exited(stage: str, code: int | None = 0, **rest: Any) -> dict[str, Any]:
    """The ``exit`` message of a stage (a clean end unless ``code``/``rest`` say otherwise)."""
    return {
        "type": "exit",
        "stage": stage,
        "code": code,
        "signal": None,
        "status": None,
        "message": None,
        **rest,
    }
