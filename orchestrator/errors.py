"""The orchestrator's exceptions: one root, raised for failures of the judge itself.

Verdicts (TLE, MLE, OLE, RE, SE) are never exceptions; they are data in an execute's meta.
An exception from this package means the judge could not do what it was asked.
"""

from __future__ import annotations


class JudgeError(Exception):
    """Root of every error the orchestrator raises."""


class EngineUnavailable(JudgeError):
    """The Docker engine cannot be reached or answered with an unexpected server error."""


class ImageNotFound(JudgeError):
    """The image a sandbox was asked to run does not exist on the engine."""

    def __init__(self, image: str) -> None:
        super().__init__(f"image '{image}' is not installed on the Docker engine")
        self.image = image


class SandboxError(JudgeError):
    """A sandbox failed: it could not start, its supervisor died or broke the protocol."""

    def __init__(self, message: str, *, container_id: str | None = None) -> None:
        super().__init__(message)
        self.container_id = container_id


class PathNotFound(JudgeError):
    """A path asked for inside a sandbox does not exist (or its parent directory does not)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"'{path}' does not exist in the sandbox")
        self.path = path


class TransferRefused(JudgeError):
    """An archive moved between sandboxes was refused: too large, a link, or an unsafe name."""
