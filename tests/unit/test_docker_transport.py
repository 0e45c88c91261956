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


def test_every_engine_url_shares_one_connection_pool_on_a_unix_socket() -> None:
    # The SDK keys pools by the whole URL: each container's calls would open a new socket.
    api = adapter("unix:///var/run/docker.sock")._api
    base = "http+docker://localhost/v1.41/containers"
    transport = api.get_adapter(f"{base}/a/start")
    first = transport.get_connection(f"{base}/a/start")
    assert transport.get_connection(f"{base}/b/json?size=0") is first
    assert transport.get_connection("http+docker://localhost/v1.41/version") is first
    assert first.pool.maxsize >= 10


def test_the_sdks_own_pools_stay_when_asked() -> None:
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    api = DockerAdapter(client, ThreadPoolExecutor(1), one_pool=False)._api
    base = "http+docker://localhost/v1.41/containers"
    transport = api.get_adapter(f"{base}/a/start")
    a = transport.get_connection(f"{base}/a/start")
    assert transport.get_connection(f"{base}/b/start") is not a
