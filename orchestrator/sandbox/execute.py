"""What one execute asks of a sandbox and what comes back: the requests (``ExecRequest``, its
``InteractorRequest``), the verdict and figures (``Meta``) and the outcome with the records
(``ExecOutcome``), with their wire forms (images/supervisor/PROTOCOL.md). ``sandbox.py`` sends
them; they are plain data.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InteractorRequest:
    """The interactor of an interactive execute: it runs beside the command as another user.

    Its stdin is the command's stdout and its stdout the command's stdin (pipes in the sandbox).
    ``private`` files become readable by the interactor only. Limits as in ``ExecRequest``.
    """

    argv: tuple[str, ...]
    cpu_time_ms: int = 60000
    memory_kib: int = 65536
    output_kib: int = 262144
    stderr: str = ""
    record_stderr_bytes: int = 0
    private: tuple[str, ...] = ()

    @property
    def wall_time_ms(self) -> int:
        """Real time allowed: 1.5 x the CPU time limit (counted once the command has ended)."""
        return math.ceil(self.cpu_time_ms * 3 / 2)

    def to_wire(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "cpu_time_ms": self.cpu_time_ms,
            "wall_time_ms": self.wall_time_ms,
            "memory_kib": self.memory_kib,
            "output_kib": self.output_kib,
            "stderr": self.stderr,
            "record_stderr": self.record_stderr_bytes if self.stderr else 0,
            "private": list(self.private),
        }


@dataclass(frozen=True)
class ExecRequest:
    """One command under limits. Paths are relative to the sandbox root; "" = no redirection.

    With an ``interactor``, stdin and stdout must be "" (they are the pipes to it).
    """

    argv: tuple[str, ...]
    cpu_time_ms: int = 60000
    memory_kib: int = 65536
    output_kib: int = 262144
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    record_stdout_bytes: int = 0
    record_stderr_bytes: int = 0
    # Protocol 2: the supervisor also writes the meta file here, as the runner would ("" = no).
    meta_file: str = ""
    interactor: InteractorRequest | None = None
    # The per-execute limits of the supervisor's feature "limits" (None: not set, today's rules;
    # PROTOCOL.md): real time (default 1.5 x CPU time), processes and threads alive at once, the
    # largest file (below output_kib), the stack.
    wall_time_limit_ms: int | None = None
    process_limit: int | None = None
    file_size_kib: int | None = None
    stack_kib: int | None = None
    # The supervisor's feature "merged": also a file of stdout and stderr together, in the order
    # the command wrote them ("" = none), and how many of its first bytes to report.
    merged: str = ""
    record_merged_bytes: int = 0

    @property
    def wall_time_ms(self) -> int:
        """Real time allowed: ``wall_time_limit_ms``, else 1.5 x the CPU time limit."""
        if self.wall_time_limit_ms is not None:
            return self.wall_time_limit_ms
        return math.ceil(self.cpu_time_ms * 3 / 2)

    @property
    def needs_limits(self) -> bool:
        """Whether it sets a limit only a supervisor with the feature "limits" enforces."""
        return any(v is not None for v in (self.process_limit, self.file_size_kib, self.stack_kib))

    @property
    def needs_merged(self) -> bool:
        """Whether it asks for a merged file (only a supervisor with "merged" writes one)."""
        return bool(self.merged)

    @property
    def fence_memory_kib(self) -> int:
        """The memory the sandbox must hold: the command's limit plus its interactor's."""
        return self.memory_kib + (self.interactor.memory_kib if self.interactor else 0)

    @property
    def answer_within_s(self) -> float:
        """The longest the supervisor may take before it answers (beyond its kill margin)."""
        wall = self.wall_time_ms
        if self.interactor is not None:
            wall += self.interactor.wall_time_ms
        return wall / 1000

    def to_wire(self) -> dict[str, Any]:
        wire = self._wire()
        if self.interactor is not None:
            wire["interactor"] = self.interactor.to_wire()
        return wire

    def _wire(self) -> dict[str, Any]:
        return {
            "op": "exec",
            "argv": list(self.argv),
            "cpu_time_ms": self.cpu_time_ms,
            "wall_time_ms": self.wall_time_ms,
            "memory_kib": self.memory_kib,
            "output_kib": self.output_kib,
            "stdin": self.stdin,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "record_stdout": self.record_stdout_bytes if self.stdout else 0,
            "record_stderr": self.record_stderr_bytes if self.stderr else 0,
            **({"meta_file": self.meta_file} if self.meta_file else {}),
            **{
                key: value
                for key, value in (
                    ("process_limit", self.process_limit),
                    ("file_size_kib", self.file_size_kib),
                    ("stack_kib", self.stack_kib),
                )
                if value is not None
            },
            **(
                {"merged": self.merged, "record_merged": self.record_merged_bytes}
                if self.merged
                else {}
            ),
        }


@dataclass(frozen=True)
class Meta:
    """What happened to one execute; ``status`` "" means all went well."""

    status: str = ""
    message: str = ""
    memory_kib: int = 0
    cpu_time_ms: int = 0
    real_time_ms: int = 0
    exit_code: int = 0
    signal: int = 0

    @classmethod
    def system_error(cls, message: str) -> Meta:
        """An ``SE`` meta: the judge could not run the execute."""
        return cls(status="SE", message=message)

    @classmethod
    def from_wire(cls, doc: Mapping[str, Any]) -> Meta:
        """Build from the supervisor's meta object; raises ``ValueError`` when malformed."""
        try:
            return cls(
                status=str(doc["status"]),
                message=str(doc["message"]),
                memory_kib=int(doc["memory-usage"]),
                cpu_time_ms=int(doc["cpu-time-usage"]),
                real_time_ms=int(doc["real-time-usage"]),
                exit_code=int(doc.get("exit-code", 0)),
                signal=int(doc.get("signal", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed meta from the supervisor: {e!r}") from e

    def to_dict(self) -> dict[str, Any]:
        """The meta as the result reports it (with ``exit-code`` and ``signal``)."""
        return {
            "status": self.status,
            "message": self.message,
            "memory-usage": self.memory_kib,
            "cpu-time-usage": self.cpu_time_ms,
            "real-time-usage": self.real_time_ms,
            "exit-code": self.exit_code,
            "signal": self.signal,
        }


@dataclass(frozen=True)
class ExecOutcome:
    """An execute's meta and the base64 records of its redirected stdout/stderr."""

    meta: Meta
    stdout_b64: str = ""
    stderr_b64: str = ""
    # Asked for a meta file: "" written, else why not; None: not written (older supervisor).
    meta_file_error: str | None = None
    interactor: ExecOutcome | None = None
    merged_b64: str = ""  # the merged file's record (an execute with ``merged``)

    @property
    def stdout(self) -> bytes:
        return base64.b64decode(self.stdout_b64)

    @property
    def stderr(self) -> bytes:
        return base64.b64decode(self.stderr_b64)

    @property
    def merged(self) -> bytes:
        return base64.b64decode(self.merged_b64)


def outcome_from_wire(doc: Mapping[str, Any]) -> ExecOutcome:
    """An outcome from the supervisor's ``meta`` and ``record``; raises on malformed ones."""
    meta = Meta.from_wire(doc["meta"])
    record = doc.get("record") or {}
    return ExecOutcome(
        meta,
        str(record.get("stdout", "")),
        str(record.get("stderr", "")),
        merged_b64=str(record.get("merged", "")),
    )


__all__ = ["ExecOutcome", "ExecRequest", "InteractorRequest", "Meta", "outcome_from_wire"]
