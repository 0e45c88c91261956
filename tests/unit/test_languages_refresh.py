"""The server's registry refresh without an engine: a fake image list stands in for the engine's
(what is tested is when the registry is rebuilt, not what an image contains)."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.errors import EngineUnavailable
from orchestrator.languages import LABEL, LABEL_IMAGE, ImageInfo
from service.languages import Languages, image_infos


def info(tag: str, lang_id: str, image_id: str = "") -> ImageInfo:
    entry = {
        "id": lang_id,
        "name": lang_id,
        "version": "1.0.0",
        "source_file": "main",
        "run": ["sh", "{file}"],
    }
    labels = {LABEL: json.dumps([entry]), LABEL_IMAGE: tag}
    return ImageInfo(id=image_id or f"sha256:{tag}", tags=(f"{tag}:latest",), labels=labels)


class FakeEngine:
    def __init__(self) -> None:
        self.images: list[ImageInfo] = []
        self.calls = 0
        self.down = False

    async def list_images(self) -> list[ImageInfo]:
        self.calls += 1
        if self.down:
            raise EngineUnavailable("the engine does not answer")
        return list(self.images)


async def test_refresh_rebuilds_only_when_images_change(caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeEngine()
    languages = Languages(engine.list_images)
    assert languages.all() == []
    assert languages.images is None  # not known yet: a shared queue then filters nothing
    engine.images = [info("judge/a", "a")]
    first = await languages.refresh()
    assert [lang.id for lang in first.all()] == ["a"]
    # Which images this node has (what it may claim from a shared queue): every name and id.
    plain = ImageInfo("sha256:p", ("judge/base:latest", "judge/base:v2"), {"judge.supervisor": "1"})
    engine.images.append(plain)
    await languages.refresh()
    names = {"judge/a", "sha256:judge/a", "judge/base", "judge/base:v2", "sha256:p", "p"}
    assert languages.images == names
    engine.images.remove(plain)
    first = await languages.refresh()
    assert await languages.refresh() is first  # same ids and tags: the same registry
    engine.images = [info("judge/a", "a", image_id="sha256:rebuilt")]
    assert await languages.refresh() is not first
    # A custom image replacing a shipped language is logged.
    engine.images.append(info("myorg/a", "a"))
    with caplog.at_level(logging.INFO, logger="service.languages"):
        registry = await languages.refresh()
    assert registry.get("a").image == "myorg/a"  # type: ignore[union-attr]
    assert "language 'a': myorg/a replaces judge/a" in caplog.text
    assert languages.find("a") is languages.get("a")
    assert languages.resolve("a") is languages.get("a")
    assert languages.by_judge0_id(71) is None


async def test_max_age_bounds_the_engine_calls() -> None:
    engine = FakeEngine()
    languages = Languages(engine.list_images)
    await languages.refresh(max_age_s=60)
    await languages.refresh(max_age_s=60)
    assert engine.calls == 1
    await languages.refresh(max_age_s=0)
    assert engine.calls == 2


async def test_an_engine_outage_keeps_the_last_registry(caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeEngine()
    engine.images = [info("judge/a", "a")]
    languages = Languages(engine.list_images)
    before = await languages.refresh()
    engine.down = True
    with caplog.at_level(logging.WARNING, logger="service.languages"):
        assert await languages.refresh() is before
        assert await languages.refresh() is before
        calls = engine.calls
        assert await languages.refresh(max_age_s=60) is before
        assert engine.calls == calls  # a failed look counts for max_age_s too
    # Said once per outage, not at every look.
    assert caplog.text.count("cannot list the engine's images") == 1
    engine.down = False
    engine.images = []
    assert (await languages.refresh()).all() == []


def test_image_infos_drop_untagged_names() -> None:
    infos = image_infos(
        [
            {"Id": "sha256:1", "RepoTags": ["<none>:<none>"], "Labels": None, "Created": 5},
            {
                "Id": "sha256:2",
                "RepoTags": ["judge/a:latest"],
                "Labels": {"k": "v"},
                "RepoDigests": ["judge/a@sha256:d"],
            },
        ]
    )
    assert infos[0].tags == ()
    assert infos[1] == ImageInfo(
        "sha256:2", ("judge/a:latest",), {"k": "v"}, 0.0, ("judge/a@sha256:d",)
    )
