"""The Docker adapter's HTTP session: no environment lookups on the engine's Unix socket."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import docker

from orchestrator.sandbox.docker import DockerAdapter


def adapter(base_url: str) -> DockerAdapter:
    # A pinned API version: building the client does not contact the engine.
    return DockerAdapter(
        docker.DockerClient(base_url=base_url, version="1.41"), ThreadPoolExecutor(1)
    )


def test_a_unix_socket_skips_proxies_and_netrc_from_the_environment() -> None:
    assert adapter("unix:///var/run/docker.sock")._api.trust_env is False


def test_a_tcp_engine_keeps_the_environment_settings() -> None:
    assert adapter("tcp://127.0.0.1:2375")._api.trust_env is True
