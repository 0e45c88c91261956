"""``mission.image`` is checked against the engine's reference grammar before the engine sees
it: a malformed one is the request's 400 at ``mission.image``, never an engine error (which
read as 503 ``engine_unavailable``: a node failing)."""

from __future__ import annotations

import pytest

from orchestrator.mission import MissionInvalid, parse_mission


@pytest.mark.parametrize(
    "image",
    [
        "judge/default",
        "judge/cpp:latest",
        "python3",
        "localhost/x",
        "registry.local:5000/team/img:v1.2",
        "team/img@sha256:" + "a" * 64,
        "registry.local:5000/a/b/c:t@sha256:" + "0" * 64,
        "sha256:" + "b" * 64,  # an image id as the engine takes it
        "abcdef012345",
        "a_b__c.d-e---f",
    ],
)
def test_references_the_engine_takes_are_accepted(image: str) -> None:
    assert parse_mission({"image": image}).image == image


@pytest.mark.parametrize(
    "image",
    [
        " \u00f0\u0003\u2028",  # what Schemathesis sent: 503 before
        "Judge/Cpp",
        "a//b",
        "a:",
        "judge/x:-bad",
        "judge/x:" + "t" * 129,
        "a" * 256,
        "UPPER:tag",
        "a/b:c:d",
        "x@sha256:abc",
        "/judge/default",
        "judge/default/",
        "-judge",
        "judge/default latest",
    ],
)
def test_malformed_references_are_refused_at_mission_image(image: str) -> None:
    with pytest.raises(MissionInvalid) as got:
        parse_mission({"image": image})
    assert got.value.path == "mission.image"
    assert "not an image reference" in got.value.message or "at most 255" in got.value.message
