"""What is small enough to handle on the event loop rather than on a thread.

A hop to a thread and back costs ~0.2-0.3 ms here, more than validating, planning or encoding a
hello world (~0.05 ms each). Work on the loop must stay bounded whatever a request holds, so the
loop takes only what these bounds cap: the ones intake uses for a submission (a document of at
most 16 KiB, no tasks, at most 16 executes), plus a bound on the files and on the recorded output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.mission import result as result_doc
from orchestrator.mission.caps import plans_little
from service.store import MissionRow

INLINE_BYTES = 16 * 1024
INLINE_EXECUTES = 16
INLINE_FILES = 16


def count_files(doc: Mapping[str, Any]) -> int:
    """The files a mission document lists (its stages' and tasks'): a submission as stored or
    its normalised echo, which have the same shape."""
    stages = [doc.get("prepare"), doc.get("final"), *((doc.get("tasks") or {}).get("task") or [])]
    return sum(len(stage.get("file") or {}) for stage in stages if isinstance(stage, Mapping))


def stored_small(row: MissionRow) -> bool:
    """Whether ``row``'s stored mission may be read again on the loop: a document of at most
    ``INLINE_BYTES`` characters planning no tasks, at most ``INLINE_EXECUTES`` executes and
    ``INLINE_FILES`` files. False when its size is not known."""
    if not 0 < row.mission_bytes <= INLINE_BYTES:
        return False
    doc = row.mission
    return plans_little(doc, INLINE_EXECUTES) and count_files(doc) <= INLINE_FILES


def callback_small(row: MissionRow, result: Mapping[str, Any]) -> bool:
    """Whether ``row``'s callback body may be encoded on the loop: its mission is small
    (``stored_small``) and the output its result records is at most ``INLINE_BYTES``."""
    if not stored_small(row):
        return False
    recorded = 0
    for _, _, _, entry in result_doc.entries(result):
        record = entry.get("record")
        if isinstance(record, Mapping):
            recorded += sum(len(v) for v in record.values() if isinstance(v, str))
        if recorded > INLINE_BYTES:
            return False
    return True


__all__ = [
    "INLINE_BYTES",
    "INLINE_EXECUTES",
    "INLINE_FILES",
    "callback_small",
    "count_files",
    "stored_small",
]
