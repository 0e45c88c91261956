"""The retention period: finished jobs and missions, and blobs no token touched, are removed
once they are older than it; the files nothing refers to any more are deleted.

``metric_lines`` is what this adds to ``/metrics`` (kept apart from the rest on purpose).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from service.frontdoors.webgme.blobs import BlobStore
from service.frontdoors.webgme.tables import SweepResult

log = logging.getLogger(__name__)


class RetentionSweeper:
    """Sweeps a blob store (and the database behind it) and counts what it removed."""

    def __init__(self, blobs: BlobStore, retention_s: float) -> None:
        self._blobs = blobs
        self.retention_s = retention_s
        self.removed: Counter[str] = Counter()
        self.sweeps = 0

    async def sweep(self, now: float | None = None) -> SweepResult:
        """One sweep: removes what ended before ``now`` minus the retention period."""
        cutoff = (time.time() if now is None else now) - self.retention_s
        result = await self._blobs.sweep(cutoff)
        self.sweeps += 1
        self.removed.update(
            jobs=result.jobs, outputs=result.outputs, missions=result.missions, blobs=result.blobs
        )
        if result.jobs or result.missions or result.blobs:
            log.info(
                "retention: removed %d jobs, %d missions, %d blobs (%d files)",
                result.jobs,
                result.missions,
                result.blobs,
                len(result.contents),
            )
        return result

    async def run_every(self, period_s: float) -> None:
        """Sweep every ``period_s`` until cancelled; a failed sweep is logged and retried."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(period_s)  # a period, not a synchronisation

    @property
    def freed(self) -> tuple[int, int]:
        """Bytes and files of blobs deleted by retention since the server started (for the
        metrics: ``service.api.metrics``)."""
        return self._blobs.bytes_freed, self._blobs.files_freed
