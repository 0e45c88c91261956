"""A submitted mission validated and echoed: on the loop when it is small, else in a worker
process (``service.pipeline.offload``), with the same answers either way.

Functions here run in the worker processes too: module-level, pure, with picklable arguments
and answers (their exceptions, ``MissionInvalid`` and ``MissionTooLarge``, rebuild themselves).
"""

from __future__ import annotations

from typing import Any

from orchestrator.mission import Mission, MissionCaps, load_json, normalise, parse_mission
from orchestrator.mission.model import Stage, Tasks

Prepared = tuple[Mission, dict[str, Any], dict[str, Any]]


def prepare_mission(raw: object, caps: MissionCaps) -> Prepared:
    """``(mission, its normalised echo, the document as submitted)`` of a submitted mission
    (its JSON text, or the decoded document).

    Raises ``MissionInvalid``/``MissionTooLarge``. Proportional to the mission: never on the
    event loop unless the mission is known to be small.
    """
    doc = load_json(raw) if isinstance(raw, str | bytes | bytearray) else raw
    mission = parse_mission(doc, caps)
    assert isinstance(doc, dict)  # parse_mission accepted it as an object
    return mission, normalise(mission), doc


def prepare_mission_head(raw: object, caps: MissionCaps) -> Prepared:
    """``prepare_mission`` for a worker process: the same answer, but the ``Mission`` is its
    head (its return, image, language, runtime, tick and ``tasks.parallel``; no stage lists).

    Its stages travel once, in the normalised echo: rebuilding 10,000 validated executes here
    costs ten times what unpickling their echo does. What a handler checks before storing a
    mission is all in the head.
    """
    mission, normalised, doc = prepare_mission(raw, caps)
    head = mission.model_copy(
        update={
            "prepare": Stage(),
            "tasks": Tasks(parallel=mission.tasks.parallel),
            "final": Stage(),
        }
    )
    return head, normalised, doc
