"""What the Judge0 door needs from the judge, in one place: the rest of the door sees only this.

Everything is resolved lazily (the judge's resources exist once the root application started).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from orchestrator.mission import MissionCaps
from orchestrator.run.runner import MissionIO
from service.frontdoors.judge0.languages import Judge0Language
from service.frontdoors.judge0.request import Judge0Config
from service.frontdoors.judge0.settings import Judge0Settings
from service.frontdoors.judge0.submissions import Submissions
from service.pipeline.intake import DoorRows
from service.store import MissionRow


@dataclass
class Judge0Ports:
    """The judge as the door uses it; each callable is bound when the judge has started."""

    settings: Callable[[], Judge0Settings]
    anonymous_tenant: str
    authenticate: Callable[[str], Awaitable[str | None]]
    rate_limit: Callable[[str], dict[str, str]]
    submit: Callable[
        [str, dict[str, Any], dict[str, Any], str, MissionIO | None, DoorRows], Awaitable[int]
    ]
    single_node: Callable[[], bool]
    mission: Callable[[int], Awaitable[MissionRow | None]]
    wait_synchronously: Callable[[int, float], Awaitable[MissionRow | None]]
    callback_refusal: Callable[[str], str | None]
    mission_caps: Callable[[], MissionCaps]
    languages: Callable[[], dict[int, Judge0Language]]
    config: Callable[[], Judge0Config]
    queued: Callable[[], Awaitable[int]]
    running: Callable[[], Awaitable[int]]
    max_running: Callable[[], int]
    submissions_of: Callable[[], Submissions]

    @property
    def submissions(self) -> Submissions:
        return self.submissions_of()

    async def wait_for(self, token: str, mission_id: int) -> Any:
        """Wait until a submission ended; its row (None when the server stopped first). Once
        the engine has not answered for ``wait_outage_s`` the mission is cancelled and
        ``EngineUnavailable`` raised: the judge's shared synchronous wait."""
        with self.submissions.awaited(token) as ended:
            await self.wait_synchronously(mission_id, self.settings().wait_outage_s)
            row = ended()
        row = row or await self.submissions.repo.get(token)
        return row if row is not None and row.finished_at is not None else None


PORTS = web.AppKey("judge0_ports", Judge0Ports)

__all__ = ["PORTS", "Judge0Ports"]
