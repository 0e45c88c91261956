"""The orchestrator's exceptions: one root, raised for failures of the judge itself.

Verdicts (TLE, MLE, OLE, RE, SE) are never exceptions; they are data in an execute's meta.
An exception from this package means the judge could not do what it was asked.
"""

from __future__ import annotations


class JudgeError(Exception):
    """Root of every error the orchestrator raises."""

    infrastructure = False
    """True for a failure of the engine or of the judge's own sandbox machinery: a mission it
    interrupts is run again (``MissionInterrupted``), never judged on it."""


class EngineUnavailable(JudgeError):
    """The Docker engine cannot be reached or answered with an unexpected server error."""

    infrastructure = True


class EngineRefused(JudgeError):
    """The engine refused a request as malformed (its 4xx answers other than 404/409): the
    request's mistake, such as an invalid image reference, not a node's failure."""


class MissionInterrupted(JudgeError):
    """A mission could not go on for a failure of the engine or of a sandbox's supervisor
    (``infrastructure`` errors); nothing of it is a verdict. Run it again from the start."""

    infrastructure = True


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


class SandboxLost(SandboxError):
    """A sandbox's supervisor went away or stopped answering mid-conversation: the engine died
    or the container was killed. The program cannot signal its supervisor (uid 10001, no
    capabilities), so this counts as the judge's failure, not a verdict; a program that brings
    its sandbox down anyway, every time, is stopped by the service's limit on re-runs."""

    infrastructure = True


class PathNotFound(JudgeError):
    """A path asked for inside a sandbox does not exist (or its parent directory does not)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"'{path}' does not exist in the sandbox")
        self.path = path


class TransferRefused(JudgeError):
    """An archive moved between sandboxes was refused: too large, a link, or an unsafe name."""
