"""The adapter's small look-ups (the engine's version, an image's labels) go over the local
engine's socket from the event loop itself: the same answers as the SDK's, no thread involved."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from orchestrator.errors import EngineRefused, EngineUnavailable
from orchestrator.sandbox.docker import MIN_API_VERSION, DockerAdapter
from tests.conftest import DEFAULT_IMAGE


def threadless_adapter() -> DockerAdapter:
    """An adapter whose thread pool is shut: any call that needs a thread fails."""
    executor = ThreadPoolExecutor(1)
    executor.shutdown()
    return DockerAdapter.from_env(executor)


async def test_version_and_labels_answer_without_a_thread_as_the_sdk_does() -> None:
    adapter = threadless_adapter()
    sdk = docker.from_env(version=MIN_API_VERSION)
    try:
        with pytest.raises(RuntimeError):
            await adapter.info()  # (the shut pool refuses what goes by thread)
        version = await adapter.version()
        assert version["Version"] == sdk.api.version()["Version"]
        labels = await adapter.image_labels(DEFAULT_IMAGE)
        assert labels == sdk.api.inspect_image(DEFAULT_IMAGE)["Config"]["Labels"]
        assert labels is not None
        assert "judge.supervisor" in labels
        assert await adapter.image_labels("judge/no-such-image-here") is None
    finally:
        adapter.close()
        sdk.close()


async def test_a_reference_the_engine_rejects_is_refused_not_unavailable() -> None:
    adapter = threadless_adapter()
    try:
        with pytest.raises(EngineRefused, match="invalid reference format"):
            await adapter.image_labels("Not A Reference")
        # The engine cleans a path with '..' and redirects; the SDK would follow it to another
        # image. No valid reference has one.
        with pytest.raises(EngineRefused, match="HTTP 301"):
            await adapter.image_labels("judge/../default")
    finally:
        adapter.close()


async def test_an_engine_socket_that_is_not_there_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    adapter = threadless_adapter()
    try:
        with pytest.raises(EngineUnavailable, match="Docker engine unavailable"):
            await adapter.version()
        with pytest.raises(EngineUnavailable, match="Docker engine unavailable"):
            await adapter.image_labels(DEFAULT_IMAGE)
    finally:
        adapter.close()
