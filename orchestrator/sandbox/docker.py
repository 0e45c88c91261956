"""The one place that talks to the Docker SDK.

The SDK blocks, so every call runs on a thread pool the caller owns and is awaited from the event
loop. SDK and socket errors become the orchestrator's own exceptions (``raise ... from``) here and
nowhere else. The adapter knows containers, volumes, archives and an attached stdio stream; what
goes over that stream (the supervisor protocol) is ``sandbox.py``'s business.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker
import docker.errors
import docker.transport
import docker.types
import requests.exceptions

from orchestrator.errors import (
    EngineRefused,
    EngineUnavailable,
    ImageNotFound,
    PathNotFound,
    SandboxError,
    SandboxLost,
    TransferRefused,
)
from orchestrator.sandbox import enginehttp
from orchestrator.sandbox.attach import AttachedStream
from orchestrator.sandbox.tar import read_capped

log = logging.getLogger(__name__)

T = TypeVar("T")

LABEL_OWNER = "io.judge.owner"
LABEL_SANDBOX = "io.judge.sandbox"
BOX_PATH = "/box"
MIN_API_VERSION = "1.41"
_UNIX_SOCKET_URL = "http+docker://localhost"  # docker's base URL for a unix:// DOCKER_HOST


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to start one hardened sandbox container."""

    image: str
    owner: str
    memory_fence_bytes: int
    box_kib: int
    tmp_kib: int
    pids_limit: int
    nano_cpus: int
    runtime: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # /box as the container's own tmpfs mount (no volume: two engine calls fewer), for images
    # whose supervisor moves files itself; the engine's archive calls cannot reach such a mount.
    box_tmpfs: bool = False
    # The engine's seccomp profile as JSON text; None leaves the engine's default in place.
    seccomp_profile: str | None = None


# Bits of Go's os.FileMode, which the engine's path stat reports.
_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27


@dataclass(frozen=True)
class PathStat:
    """A path inside a container as the engine sees it (its last component not followed)."""

    is_link: bool
    is_dir: bool
    link_target: str = ""


@dataclass
class ContainerHandle:
    """A started sandbox container, its volume and its attached stream."""

    container_id: str
    volume_name: str | None  # None: /box is the container's own tmpfs
    stream: AttachedStream
    hello: bytes


class _OnePoolUnixAdapter(docker.transport.UnixHTTPAdapter):  # type: ignore[misc]
    """The SDK's Unix socket adapter with one connection pool for every URL.

    The SDK keys its pools by the whole request URL, so each container's calls (create, start,
    update, remove: all different URLs) open a new pool and a new socket, and each pool made
    costs CPU (~0.13 ms a call, measured). Every URL reaches the same socket, so one pool serves
    them all and keeps its connections alive across calls. An attach takes its connection out
    for good (the stream owns it); the pool then simply opens another.
    """

    def __init__(self, socket_url: str, timeout: int, max_pool_size: int) -> None:
        super().__init__(socket_url, timeout, max_pool_size=max_pool_size)
        self._one_pool: Any = None

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        with self.pools.lock:
            if self._one_pool is None:
                self._one_pool = super().get_connection(_UNIX_SOCKET_URL, proxies)
            return self._one_pool


class DockerAdapter:
    """Async facade over the blocking docker SDK; the only module that imports ``docker``."""

    def __init__(
        self, client: docker.DockerClient, executor: Executor, *, one_pool: bool = True
    ) -> None:
        """``one_pool``: share one kept-alive connection pool among all calls on a Unix socket
        (False keeps the SDK's pool per URL; the benchmark compares both)."""
        self._client = client
        self._api = client.api
        self._executor = executor
        self._local: enginehttp.LocalEngine | None = None  # look-ups from the loop (unix://)
        if self._api.base_url == _UNIX_SOCKET_URL:
            # requests reads the environment's proxies and ~/.netrc at every call (a third of
            # a call's CPU, measured); neither applies to the engine's Unix socket, which
            # docker's own adapter reaches without proxies. Other transports keep them.
            self._api.trust_env = False
            unix = getattr(self._api, "_custom_adapter", None)
            if isinstance(unix, docker.transport.UnixHTTPAdapter):
                timeout_s = float(unix.timeout or 60)
                self._local = enginehttp.LocalEngine(
                    unix.socket_path, self._api._version, timeout_s
                )
                if one_pool:
                    # As many connections as threads may call at once (the executor's workers).
                    size = max(10, getattr(executor, "_max_workers", 0) or 0)
                    shared = _OnePoolUnixAdapter(unix.socket_path, unix.timeout, size)
                    unix.close()
                    self._api._custom_adapter = shared
                    self._api.mount("http+docker://", shared)

    @classmethod
    def from_env(cls, executor: Executor, timeout_s: int = 60) -> DockerAdapter:
        """Connect as the docker CLI would (``DOCKER_HOST``, TLS and ssh settings honoured).

        Does not contact the engine: the API version is pinned (``DOCKER_API_VERSION``, default
        1.41 = Docker 20.10, which newer engines still serve) instead of negotiated, so a server
        can start while the engine is down. Raises ``EngineUnavailable`` for a malformed
        configuration.
        """
        version = os.environ.get("DOCKER_API_VERSION") or MIN_API_VERSION
        try:
            client = docker.from_env(timeout=timeout_s, version=version)
        except docker.errors.DockerException as e:
            raise EngineUnavailable(f"cannot configure the Docker client: {e}") from e
        return cls(client, executor)

    def close(self) -> None:
        self._client.close()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # -- engine ---------------------------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        """Return the engine's version document; raises ``EngineUnavailable``."""
        if self._local is not None:  # on the loop: no thread waiting for the GIL
            return await self._local.version()
        return await self._call(_guard(self._api.version))

    async def info(self) -> dict[str, Any]:
        """Return ``docker info``; raises ``EngineUnavailable``."""
        return await self._call(_guard(self._api.info))

    async def runtimes(self) -> list[str]:
        """The names of the container runtimes the engine offers (``runc``, ``runsc``, ...).

        Raises ``EngineUnavailable``.
        """
        info = await self.info()
        return sorted((info.get("Runtimes") or {}).keys())

    async def image_labels(self, image: str) -> dict[str, str] | None:
        """Return the labels of ``image`` ({} when it has none) or None when it is not there."""
        if self._local is not None:
            return await self._local.image_labels(image)

        def inspect() -> dict[str, str] | None:
            try:
                doc = self._api.inspect_image(image)
            except docker.errors.ImageNotFound:
                return None
            return dict((doc.get("Config") or {}).get("Labels") or {})

        return await self._call(_guard(inspect))

    async def image_id(self, image: str) -> str | None:
        """Return the id of the image ``image`` names now, or None when it is not there."""

        def inspect() -> str | None:
            try:
                return str(self._api.inspect_image(image)["Id"])
            except docker.errors.ImageNotFound:
                return None

        return await self._call(_guard(inspect))

    async def list_images(self, label: str) -> list[dict[str, Any]]:
        """Return the inspect documents of images carrying ``label``."""

        def run() -> list[dict[str, Any]]:
            return [img.attrs for img in self._client.images.list(filters={"label": label})]

        return await self._call(_guard(run))

    async def image_summaries(self, label: str) -> list[dict[str, Any]]:
        """The engine's image list entries (``Id``, ``RepoTags``, ``Labels``, ``Created``, ...)
        of images carrying ``label``: one engine call, no inspect per image (~10 ms for a
        dozen images). Raises ``EngineUnavailable``."""

        def run() -> list[dict[str, Any]]:
            return list(self._api.images(filters={"label": label}))

        return await self._call(_guard(run))

    # -- sandboxes ------------------------------------------------------------------------------

    async def start_sandbox(self, spec: ContainerSpec, hello_timeout_s: float) -> ContainerHandle:
        """Create the volume and container, attach, start, and read the supervisor's hello line.

        Everything created is removed again when a step fails. Raises ``ImageNotFound``,
        ``EngineUnavailable`` or ``SandboxError``.
        """
        return await self._call(self._start_sandbox, spec, hello_timeout_s)

    def _start_sandbox(self, spec: ContainerSpec, hello_timeout_s: float) -> ContainerHandle:
        sandbox_id = uuid.uuid4().hex[:16]
        labels = {LABEL_OWNER: spec.owner, LABEL_SANDBOX: sandbox_id, **spec.labels}
        name = f"judge-{sandbox_id}"
        container_id: str | None = None
        stream: AttachedStream | None = None
        volume: str | None = None if spec.box_tmpfs else name
        box_opts = f"size={spec.box_kib}k,uid=10001,gid=10001,mode=0755,nosuid,nodev"
        try:
            if volume is None:
                box_mounts = []
                # "exec": the engine's tmpfs default is noexec, and compiled programs run here.
                tmpfs = {BOX_PATH: f"{box_opts},exec"}
            else:
                box_mounts = [docker.types.Mount(target=BOX_PATH, source=volume, type="volume")]
                tmpfs = {}
                self._create_volume(volume, box_opts, labels)
            host_config = self._api.create_host_config(
                network_mode="none",
                cap_drop=["ALL"],
                # PID 1 (the supervisor, root without other capabilities) needs these to drop to
                # the sandbox user and to kill what the command leaves behind; CHOWN to hand an
                # interactor's private files to the interactor user. Commands never hold any.
                cap_add=["SETUID", "SETGID", "KILL", "CHOWN"],
                security_opt=[
                    "no-new-privileges",
                    *([f"seccomp={spec.seccomp_profile}"] if spec.seccomp_profile else []),
                ],
                read_only=True,
                mounts=box_mounts,
                tmpfs={**tmpfs, "/tmp": f"size={spec.tmp_kib}k,mode=1777,nosuid,nodev"},
                pids_limit=spec.pids_limit,
                mem_limit=spec.memory_fence_bytes,
                memswap_limit=spec.memory_fence_bytes,
                nano_cpus=spec.nano_cpus,
                shm_size=16 * 1024 * 1024,
                log_config=docker.types.LogConfig(type="none"),
                ulimits=[docker.types.Ulimit(name="core", soft=0, hard=0)],
                ipc_mode="private",
                runtime=spec.runtime,
            )
            created = self._api.create_container(
                spec.image,
                name=name,
                hostname="sandbox",
                stdin_open=True,
                tty=False,
                network_disabled=True,
                working_dir=BOX_PATH,
                labels=labels,
                host_config=host_config,
            )
            container_id = created["Id"]
            # Attach before start: nothing can be lost and no bytes are read ahead.
            sock = self._api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            stream = AttachedStream(sock)
            self._api.start(container_id)
            try:
                hello = stream.read_line(hello_timeout_s)
            except (OSError, EOFError, ValueError) as e:
                raise SandboxError(
                    f"the sandbox supervisor did not start: {e!r} "
                    f"{stream.stderr_tail.decode(errors='replace')}",
                    container_id=container_id,
                ) from e
            return ContainerHandle(container_id, volume, stream, hello)
        except docker.errors.ImageNotFound as e:
            self._remove(container_id, volume, stream)
            raise ImageNotFound(spec.image) from e
        except docker.errors.NotFound as e:
            self._remove(container_id, volume, stream)
            if "image" in str(e).lower():
                raise ImageNotFound(spec.image) from e
            raise SandboxError(f"cannot start sandbox: {_explain(e)}") from e
        except docker.errors.APIError as e:
            self._remove(container_id, volume, stream)
            if _refused(e):
                raise EngineRefused(f"cannot start sandbox: {_explain(e)}") from e
            # The engine failed to start it (5xx): the node's failure, run again elsewhere/later.
            raise EngineUnavailable(f"cannot start sandbox: {_explain(e)}") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            self._remove(container_id, volume, stream)
            raise EngineUnavailable(f"Docker engine unavailable: {e}") from e
        except BaseException:
            self._remove(container_id, volume, stream)
            raise

    def _create_volume(self, name: str, opts: str, labels: dict[str, str]) -> None:
        self._api.create_volume(
            name=name,
            driver="local",
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": opts},
            labels=labels,
        )

    async def remove_sandbox(self, handle: ContainerHandle) -> None:
        """Kill and remove the container and its volume; never raises for what is already gone.
        Raises ``EngineUnavailable`` when the engine does not answer (it is still there)."""
        await self._call(self._remove, handle.container_id, handle.volume_name, handle.stream, True)

    def _remove(
        self,
        container_id: str | None,
        volume: str | None,
        stream: AttachedStream | None,
        raise_unavailable: bool = False,
    ) -> None:
        if stream is not None:
            stream.close()
        unavailable: Exception | None = None
        if container_id is not None:
            try:
                self._api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:
                if e.status_code != 409:  # 409: removal already in progress
                    log.warning("cannot remove container %s: %s", container_id[:12], e)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
                log.warning("cannot remove container %s: %s", container_id[:12], e)
                unavailable = e
        if volume is not None:
            try:
                self._api.remove_volume(volume, force=True)
            except docker.errors.NotFound:
                pass
            except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
                log.warning("cannot remove volume %s: %s", volume, e)
                unavailable = unavailable or e
        if raise_unavailable and unavailable is not None:
            raise EngineUnavailable(f"Docker engine unavailable: {unavailable}") from unavailable

    async def sweep(self, owner: str) -> tuple[int, int]:
        """Remove every container and volume labelled with ``owner``; returns their counts."""

        def run() -> tuple[int, int]:
            filters = {"label": f"{LABEL_OWNER}={owner}"}
            containers = self._api.containers(all=True, filters=filters)
            for c in containers:
                self._remove(c["Id"], None, None)
            volumes = (self._api.volumes(filters=filters) or {}).get("Volumes") or []
            for v in volumes:
                self._remove(None, v["Name"], None)
            return len(containers), len(volumes)

        return await self._call(_guard(run))

    async def count_owned(self, owner: str) -> tuple[int, int]:
        """Count containers and volumes labelled with ``owner`` (for tests and health)."""

        def run() -> tuple[int, int]:
            filters = {"label": f"{LABEL_OWNER}={owner}"}
            containers = self._api.containers(all=True, filters=filters)
            volumes = (self._api.volumes(filters=filters) or {}).get("Volumes") or []
            return len(containers), len(volumes)

        return await self._call(_guard(run))

    async def update_memory(self, container_id: str, fence_bytes: int) -> None:
        """Set the container's memory and memory+swap limit in one engine call (both travel in
        one request, which the engine applies together); raises ``SandboxError``."""

        def run() -> None:
            try:
                self._api.update_container(
                    container_id, mem_limit=fence_bytes, memswap_limit=fence_bytes
                )
            except docker.errors.APIError as e:
                raise SandboxError(
                    f"cannot set the memory limit: {_explain(e)}", container_id=container_id
                ) from e

        await self._call(_guard(run))

    # -- files ----------------------------------------------------------------------------------

    async def put_archive(self, container_id: str, path: str, data: bytes) -> None:
        """Unpack the tar ``data`` into ``path`` inside the container (as the daemon does).

        Raises ``PathNotFound`` when ``path`` does not exist, ``SandboxError`` otherwise.
        """

        def run() -> None:
            try:
                ok = self._api.put_archive(container_id, path, data)
            except docker.errors.NotFound as e:
                raise PathNotFound(_box_relative(path)) from e
            except docker.errors.APIError as e:
                raise SandboxError(
                    f"cannot copy into the sandbox: {_explain(e)}", container_id=container_id
                ) from e
            if not ok:
                raise SandboxError("cannot copy into the sandbox", container_id=container_id)

        await self._call(_guard(run))

    async def lstat_paths(self, container_id: str, paths: list[str]) -> list[PathStat | None]:
        """What each of ``paths`` is inside the container, without following a link in its last
        component (None when it does not exist); one engine call per path, on one thread.

        Raises ``SandboxError`` when the engine fails.
        """

        def run() -> list[PathStat | None]:
            url = self._api._url("/containers/{0}/archive", container_id)
            stats: list[PathStat | None] = []
            for path in paths:
                try:
                    resp = self._api.head(url, params={"path": path}, timeout=self._api.timeout)
                except requests.exceptions.RequestException as e:
                    raise EngineUnavailable(f"Docker engine unavailable: {e}") from e
                if resp.status_code == 404:
                    stats.append(None)
                    continue
                header = resp.headers.get("X-Docker-Container-Path-Stat")
                if resp.status_code != 200 or not header:
                    raise SandboxError(
                        f"cannot inspect '{_box_relative(path)}' (HTTP {resp.status_code})",
                        container_id=container_id,
                    )
                doc = json.loads(base64.b64decode(header))
                mode = int(doc.get("mode", 0))
                stats.append(
                    PathStat(
                        is_link=bool(mode & _GO_MODE_SYMLINK),
                        is_dir=bool(mode & _GO_MODE_DIR),
                        link_target=str(doc.get("linkTarget", "")),
                    )
                )
            return stats

        return await self._call(_guard(run))

    async def get_archive(self, container_id: str, path: str, max_bytes: int) -> bytes:
        """Return a tar of ``path`` inside the container, reading at most ``max_bytes``.

        Raises ``PathNotFound``, ``TransferRefused`` (too large) or ``SandboxError``.
        """

        def run() -> bytes:
            try:
                chunks, _stat = self._api.get_archive(container_id, path, chunk_size=65536)
                return read_capped(chunks, max_bytes, f"'{_box_relative(path)}'")
            except docker.errors.NotFound as e:
                raise PathNotFound(_box_relative(path)) from e
            except docker.errors.APIError as e:
                raise SandboxError(
                    f"cannot copy out of the sandbox: {_explain(e)}", container_id=container_id
                ) from e

        return await self._call(_guard(run))

    # -- the attached stream --------------------------------------------------------------------

    async def exchange(self, handle: ContainerHandle, line: bytes, timeout_s: float) -> bytes:
        """Send one line to the supervisor and return its one-line answer.

        Raises ``SandboxError`` when the stream breaks, stays silent for ``timeout_s`` or
        misbehaves; the sandbox is unusable afterwards.
        """
        # On the event loop when the stream allows: a thread hop each way cost about as much as
        # the supervisor's own round trip (a ping: 0.42 ms by thread, 0.19 ms on the loop).
        with _stream_errors(handle, timeout_s):
            answer = await handle.stream.exchange(line, timeout_s)
        if answer is not None:
            return answer

        def run() -> bytes:
            with _stream_errors(handle, timeout_s):
                handle.stream.send_line(line)
                return handle.stream.read_line(timeout_s)

        return await self._call(run)

    async def send_line(self, handle: ContainerHandle, line: bytes, timeout_s: float) -> None:
        """Send one line to the supervisor without waiting for an answer (a streaming execute's
        control lines). Raises ``SandboxError`` like ``exchange``."""

        def run() -> None:
            with _stream_errors(handle, timeout_s):
                handle.stream.send_line(line)

        await self._call(run)

    async def read_line(self, handle: ContainerHandle, timeout_s: float) -> bytes:
        """The supervisor's next line (a streaming execute's output or its answer). Raises
        ``SandboxError`` like ``exchange``."""

        def run() -> bytes:
            with _stream_errors(handle, timeout_s):
                return handle.stream.read_line(timeout_s)

        return await self._call(run)


@contextlib.contextmanager
def _stream_errors(handle: ContainerHandle, timeout_s: float) -> Iterator[None]:
    """The attached stream's failures as ``SandboxError``s."""
    try:
        yield
    except TimeoutError as e:
        raise SandboxLost(
            f"the sandbox did not answer within {timeout_s:.0f} s",
            container_id=handle.container_id,
        ) from e
    except (OSError, EOFError, ValueError) as e:
        tail = handle.stream.stderr_tail.decode(errors="replace").strip()
        raise SandboxLost(
            f"the sandbox went away ({type(e).__name__}){': ' + tail if tail else ''}",
            container_id=handle.container_id,
        ) from e


def _guard(fn: Callable[..., T]) -> Callable[..., T]:
    """Map connection-level SDK failures to ``EngineUnavailable``; let ours through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (docker.errors.NotFound, docker.errors.ImageNotFound) as e:
            raise SandboxError(_explain(e)) from e
        except docker.errors.APIError as e:
            if _refused(e):
                raise EngineRefused(f"the Docker engine refused the request: {_explain(e)}") from e
            raise EngineUnavailable(f"Docker engine error: {_explain(e)}") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineUnavailable(f"Docker engine unavailable: {e}") from e

    return wrapper


def _refused(e: docker.errors.APIError) -> bool:
    """Whether the engine refused the request itself (a 4xx other than 404 and 409: a malformed
    image reference, an option it does not know), which a retry would not change."""
    status = e.status_code
    return status is not None and 400 <= status < 500 and status not in (404, 409)


def _explain(e: docker.errors.APIError | docker.errors.DockerException) -> str:
    explanation = getattr(e, "explanation", None)
    return str(explanation or e)


def _box_relative(path: str) -> str:
    prefix = BOX_PATH + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


__all__ = [
    "LABEL_OWNER",
    "LABEL_SANDBOX",
    "AttachedStream",
    "ContainerHandle",
    "ContainerSpec",
    "DockerAdapter",
    "TransferRefused",
]
