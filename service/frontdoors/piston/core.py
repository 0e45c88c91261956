"""What the Piston door needs from the judge's core, and nothing more.

The door codes against this protocol; ``service.frontdoors.piston.frontdoor`` builds it from the
core the app hands to every door. Keeping it this small keeps the door a translator: it never
reaches into the pipeline, the store or the engine by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from orchestrator.run.runner import MissionIO
from service.frontdoors.piston.live import LiveBox
from service.frontdoors.piston.runtimes import PistonRuntime
from service.store import MissionRow


class PistonCore(Protocol):
    """The judge as the Piston door sees it."""

    @property
    def max_body_bytes(self) -> int:
        """The largest request body the server takes (413 beyond)."""
        ...

    async def token_hash(self, token: str) -> str | None:
        """The hash of ``token`` when it is a valid judge token, else None."""
        ...

    def take(self, token_hash: str) -> dict[str, str]:
        """Count one execute of the token against the judge's rate limit; the rate-limit
        headers to send. Raises the limiter's 429."""
        ...

    async def submit(self, tenant: str, mission: dict[str, Any], io: MissionIO) -> int:
        """Store and queue the door's mission (its files in ``io``); its id. Raises the
        intake's refusals (a full queue, a stopping server) and ``MissionInvalid``."""
        ...

    async def cancel(self, mission_id: int) -> None:
        """Cancel a queued or running mission (it ends ``cancelled``)."""
        ...

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        """The mission's row once it ended (or the server stops)."""
        ...

    async def runtimes(self) -> Sequence[PistonRuntime]:
        """The languages the judge's images provide, as Piston runtimes."""
        ...

    async def packages(self) -> Sequence[dict[str, Any]]:
        """Piston's package list: ``{language, language_version, installed}``."""
        ...

    def sandbox(self, image: str, memory_kib: int) -> AbstractAsyncContextManager[LiveBox]:
        """A sandbox of ``image`` for a live job, removed when the block exits. Raises the
        engine's errors (``JudgeError``)."""
        ...


__all__ = ["PistonCore"]
