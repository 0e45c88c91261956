"""Sandboxes: hardened containers with a resident supervisor, driven through an async API.

A ``SandboxRuntime`` starts sandboxes; a ``Sandbox`` runs executes (one at a time) and moves files
as tar archives (the file half lives in ``transfer.py``). Verdicts come back as data (``Meta``);
exceptions mean the judge itself failed. The wire format spoken with the supervisor is
``images/supervisor/PROTOCOL.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import (
    EngineUnavailable,
    JudgeError,
    SandboxError,
)
from orchestrator.sandbox.docker import ContainerHandle, ContainerSpec, DockerAdapter
from orchestrator.sandbox.execute import (
    ExecOutcome,
    ExecRequest,
    InteractorRequest,
    Meta,
    outcome_from_wire,
)
from orchestrator.sandbox.quiet import Activity
from orchestrator.sandbox.removals import Removals
from orchestrator.sandbox.seccomp import profile_json
from orchestrator.sandbox.stream import ExecStream
from orchestrator.sandbox.transfer import INLINE_BYTES, FileTransfers, copy_path, off_loop

log = logging.getLogger(__name__)

# Time the supervisor may take beyond an execute's real-time limit to kill, reap and answer.
_ANSWER_MARGIN_S = 15.0
# The image label saying which supervisor protocol an image speaks.
PROTOCOL_LABEL = "judge.protocol"
_PROTOCOL_RECHECK_S = 10.0


@dataclass(frozen=True)
class SandboxConfig:
    """Engine-wide sandbox settings (not per execute)."""

    owner: str = "judge"
    box_kib: int = 256 * 1024
    tmp_kib: int = 64 * 1024
    pids_limit: int = 128
    cpus: float = 1.0
    fence_slack_kib: int = 16 * 1024
    # Background removals (close_later) wait for this long a quiet spell (no sandbox in use),
    # at most removal_defer_max_s, and go removal_concurrency at a time; with
    # removal_max_pending queued the oldest go at once (see removals.py).
    removal_delay_s: float = 0.1
    removal_defer_max_s: float = 2.0
    removal_concurrency: int = 2
    removal_max_pending: int = 32
    start_timeout_s: float = 30.0
    runtime: str | None = None
    # /box as a plain tmpfs mount for images whose supervisor moves files (see PROTOCOL.md).
    box_tmpfs: bool = True
    # Runtimes whose containers cannot change their memory limit once started (runsc has no
    # `update`): their fence is sized once, at creation, for the largest limit to come.
    fixed_fence_runtimes: tuple[str, ...] = ("runsc",)
    # Under gVisor the container's pids limit counts gVisor's own threads on the host (its
    # kernel is one Go process), not the sandbox's processes: 128 starve it under load.
    runsc_pids_limit: int = 1024

    def pids_for(self, runtime: str | None) -> int:
        """The container's pids limit under ``runtime``."""
        if runtime == "runsc":
            return max(self.pids_limit, self.runsc_pids_limit)
        return self.pids_limit

    # Our allowlist (sandbox/seccomp.json); None would leave the engine's default profile.
    seccomp_profile: str | None = field(default_factory=profile_json)

    def fence_bytes(self, memory_kib: int) -> int:
        """The container's hard memory fence for an execute limited to ``memory_kib``.

        The supervisor enforces ``memory_kib`` on the command's anonymous memory; the cgroup also
        charges the sandbox's tmpfs files, so the fence leaves room for them.
        """
        return (memory_kib + self.box_kib + self.tmp_kib + self.fence_slack_kib) * 1024


class Sandbox(FileTransfers):
    """One running sandbox container. Not safe for concurrent executes; close it when done."""

    def __init__(
        self,
        runtime: SandboxRuntime,
        handle: ContainerHandle,
        image: str,
        fence_bytes: int,
        container_runtime: str | None = None,
        protocol: int = 1,
    ) -> None:
        self._runtime = runtime
        # Version 2 supervisors move files over their channel; older ones need archive calls.
        self.protocol = protocol
        self._handle = handle
        self.image = image
        self.container_runtime = container_runtime
        self._fence_bytes = fence_bytes
        self._fixed_fence = container_runtime in runtime.config.fixed_fence_runtimes
        self.features: frozenset[str] = frozenset()  # from the supervisor's hello
        self._broken: str | None = None
        self._channel = asyncio.Lock()
        self._ran = False  # no execute yet: /box holds only what the judge put there
        self._lent = False  # handed to a mission or an execute (``SandboxRuntime.lend``)
        self.closed = False

    @property
    def container_id(self) -> str:
        return self._handle.container_id

    @property
    def alive(self) -> bool:
        """Open, never failed, and its supervisor's stream still open and silent (no engine
        call: a non-blocking look at the socket)."""
        return not self.closed and self._broken is None and self._handle.stream.idle_ok()

    @property
    def file_ops(self) -> bool:
        """Whether files move over the supervisor's channel (else by the engine's archives)."""
        return self.protocol >= 2

    async def _request(self, doc: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return await self._request_line(json.dumps(doc, separators=(",", ":")).encode(), timeout_s)

    async def _request_line(self, line: bytes, timeout_s: float) -> dict[str, Any]:
        if self.closed:
            raise SandboxError("the sandbox is closed", container_id=self.container_id)
        if self._broken is not None:
            raise SandboxError(self._broken, container_id=self.container_id)
        try:
            # One conversation at a time: concurrent callers (imports read in parallel) queue.
            async with self._channel:
                raw = await self._runtime.adapter.exchange(self._handle, line, timeout_s)
        except BaseException as e:
            # A cancelled or failed exchange leaves the stream mid-conversation: never reuse it.
            self._fail(e)
            raise
        try:
            # A file transfer's answer can be most of a MiB: parse it off the event loop.
            answer = json.loads(raw) if len(raw) < INLINE_BYTES else await off_loop(json.loads, raw)
        except ValueError as e:
            self._broken = "the sandbox supervisor answered garbage"
            raise SandboxError(self._broken, container_id=self.container_id) from e
        if not isinstance(answer, dict):
            self._broken = "the sandbox supervisor answered garbage"
            raise SandboxError(self._broken, container_id=self.container_id)
        return answer

    async def run(self, req: ExecRequest) -> ExecOutcome:
        """Run one execute and return its verdict and records.

        Verdicts (TLE/MLE/OLE/RE/SE) are data. Raises ``SandboxError`` (or another
        ``JudgeError``) only when the sandbox itself failed; the sandbox is then unusable.
        """
        if req.interactor is not None and "interactor" not in self.features:
            # An older supervisor would ignore the interactor and run the program alone.
            meta = self._missing("interactive executes")
            return ExecOutcome(meta, interactor=ExecOutcome(meta))
        if req.needs_limits and "limits" not in self.features:
            # An older supervisor would ignore them and run the command without them.
            return ExecOutcome(self._missing("process, file-size and stack limits"))
        if req.needs_merged and "merged" not in self.features:
            return ExecOutcome(self._missing("merged output"))
        if req.needs_merged and req.interactor is not None:
            raise ValueError("an execute with a merged file has no interactor")
        self._ran = True
        await self._grow_fence(req)
        answer = await self._request(req.to_wire(), req.answer_within_s + _ANSWER_MARGIN_S)
        if not answer.get("ok"):
            # A refused request (bad argv, protocol error) is the judge's failure, not a verdict.
            raise SandboxError(
                f"the supervisor refused the execute: {answer.get('error', '?')}",
                container_id=self.container_id,
            )
        try:
            outcome = outcome_from_wire(answer)
            if req.interactor is not None:
                outcome = dataclasses.replace(
                    outcome, interactor=outcome_from_wire(answer["interactor"])
                )
            written = answer.get("meta_file")
            if req.meta_file and written is not None:
                outcome = dataclasses.replace(outcome, meta_file_error=str(written))
            return outcome
        except (KeyError, ValueError, TypeError) as e:
            self._broken = "the sandbox supervisor answered garbage"
            raise SandboxError(self._broken, container_id=self.container_id) from e

    def _missing(self, what: str) -> Meta:
        """The SE of an execute this image's supervisor cannot run as asked."""
        return Meta.system_error(
            f"image '{self.image}' has a supervisor without {what} "
            "(rebuild it on the current judge/base)"
        )

    async def _grow_fence(self, req: ExecRequest) -> None:
        # The fence only ever grows: the supervisor enforces each execute's own limit, and a
        # fence set at creation (a pooled sandbox's) saves two engine calls per execute.
        fence = self._runtime.config.fence_bytes(req.fence_memory_kib)
        if fence > self._fence_bytes and not self._fixed_fence:
            await self._runtime.adapter.update_memory(self.container_id, fence)
            self._fence_bytes = fence

    @asynccontextmanager
    async def stream(self, req: ExecRequest) -> AsyncIterator[ExecStream]:
        """Run ``req`` with its stdin, stdout and stderr live (the supervisor's "stream"):
        the ``ExecStream`` takes stdin and signals and yields output chunks while it runs.

        ``req`` has no redirections, records or interactor (its stdio is the stream);
        ``output_kib`` bounds the bytes relayed. Leaving the block kills the program if it
        still runs. Verdicts are data, as for ``run``; raises ``SandboxError`` (or another
        ``JudgeError``) when the sandbox itself failed, which is then unusable.
        """
        if req.interactor is not None or req.stdin or req.stdout or req.stderr or req.merged:
            raise ValueError("a streaming execute has no redirections and no interactor")
        missing = (
            "streaming executes"
            if "stream" not in self.features
            else "process, file-size and stack limits"
            if req.needs_limits and "limits" not in self.features
            else None
        )
        if missing is not None:
            yield ExecStream.finished(ExecOutcome(self._missing(missing)))
            return
        if self.closed:
            raise SandboxError("the sandbox is closed", container_id=self.container_id)
        if self._broken is not None:
            raise SandboxError(self._broken, container_id=self.container_id)
        self._ran = True
        await self._grow_fence(req)
        async with self._channel:
            run = ExecStream(
                self._runtime.adapter,
                self._handle,
                {**req.to_wire(), "stream": 1},
                req.answer_within_s + _ANSWER_MARGIN_S,
            )
            try:
                await run.start()
            except BaseException as e:
                self._fail(e)
                raise
            try:
                yield run
            finally:
                try:
                    await run.finish()
                except BaseException as e:
                    self._fail(e)
                    raise

    def _fail(self, e: BaseException) -> None:
        """Mid-conversation, the channel cannot be trusted again: never reuse it."""
        self._broken = f"the sandbox failed earlier: {e}" if str(e) else "the sandbox failed"

    async def ping(self) -> None:
        """Round-trip the supervisor; raises ``SandboxError`` when it does not answer."""
        answer = await self._request({"op": "ping"}, 10.0)
        if answer.get("op") != "pong":
            raise SandboxError("the sandbox supervisor did not answer ping")

    async def close(self) -> None:
        """Kill and remove the container and its volume. Idempotent; never raises."""
        if self.closed:
            return
        self.closed = True
        self._runtime.returned(self)
        await self._remove()

    async def _remove(self) -> None:
        try:
            await self._runtime.adapter.remove_sandbox(self._handle)
        except EngineUnavailable as e:
            # Removed when the engine answers again (``remove_leftovers``).
            log.warning("cannot remove sandbox %s now: %s", self.container_id[:12], e)
            self._runtime.unremoved[self.container_id] = self._handle
        except JudgeError as e:  # pragma: no cover - the sweep at start catches leftovers
            log.warning("cannot remove sandbox %s: %s", self.container_id[:12], e)

    def close_later(self) -> None:
        """Refuse further requests now and remove the container in the background.

        The removal waits in the runtime's queue for a quiet spell (``removals.py``): a removal
        keeps the engine and a small machine's cores busy for ~0.1 s, which would otherwise
        slow the missions running meanwhile. A sandbox that failed mid-conversation (a
        cancelled execute may still be running in it) goes at once. ``SandboxRuntime.drain``
        awaits every removal. Idempotent.
        """
        if self.closed:
            return
        self.closed = True
        self._runtime.returned(self)
        self._runtime.removals.add(self, now=self._broken is not None)


class SandboxRuntime:
    """Starts sandboxes on one Docker engine with one set of engine-wide settings."""

    def __init__(self, adapter: DockerAdapter, config: SandboxConfig) -> None:
        self.adapter = adapter
        self.config = config
        # Sandboxes lent out, which background engine work (removals, refills) waits out.
        self.activity = Activity()
        self.removals: Removals[Sandbox] = Removals(
            Sandbox._remove,
            self.activity,
            idle_s=config.removal_delay_s,
            max_defer_s=config.removal_defer_max_s,
            concurrency=config.removal_concurrency,
            max_pending=config.removal_max_pending,
        )
        # Sandboxes whose removal failed while the engine did not answer.
        self.unremoved: dict[str, ContainerHandle] = {}
        # image -> (monotonic time looked up, its labels or None when not installed)
        self._labels: dict[str, tuple[float, dict[str, str] | None]] = {}
        # image -> the engine lookup under way for it (shared by every caller meanwhile)
        self._label_lookups: dict[str, asyncio.Future[dict[str, str] | None]] = {}

    async def image_labels(self, image: str, max_age_s: float = 2.0) -> dict[str, str] | None:
        """``image``'s labels (None: not installed), looked up at most every ``max_age_s``
        seconds per image: intake checks every submission's image, the engine need not. While
        the engine does not answer, what it said last about ``image``. Raises
        ``EngineUnavailable`` when it does not answer and was never asked about ``image``."""
        now = time.monotonic()
        cached = self._labels.get(image)
        if cached is not None and now - cached[0] < max_age_s:
            return cached[1]
        # One lookup per image at a time: when the cached answer expires under load, every
        # submission arriving during the engine call awaits that call instead of making its own.
        lookup = self._label_lookups.get(image)
        if lookup is None:
            lookup = asyncio.ensure_future(self.adapter.image_labels(image))
            self._label_lookups[image] = lookup
            lookup.add_done_callback(functools.partial(self._lookup_done, image))
        try:
            # Shielded: a waiter cancelled does not cancel the others' lookup.
            labels = await asyncio.shield(lookup)
        except EngineUnavailable:
            if cached is None:
                raise
            # What the engine last said: submissions are accepted during an outage, and their
            # image is looked up again when they run.
            return cached[1]
        if len(self._labels) > 1000:  # names come from requests: keep the cache bounded
            self._labels.clear()
        self._labels[image] = (now, labels)
        return labels

    def _lookup_done(self, image: str, lookup: asyncio.Future[dict[str, str] | None]) -> None:
        if self._label_lookups.get(image) is lookup:
            del self._label_lookups[image]
        if not lookup.cancelled():
            lookup.exception()  # retrieved here too: every waiter may have been cancelled

    async def _moves_files(self, image: str) -> bool:
        """Whether ``image`` says (label ``judge.protocol`` >= 2) that its supervisor moves
        files, so /box can be a plain tmpfs."""
        labels = await self.image_labels(image, _PROTOCOL_RECHECK_S)
        try:
            return int((labels or {}).get(PROTOCOL_LABEL, "1")) >= 2
        except ValueError:
            return False

    def lend(self, box: Sandbox) -> None:
        """``box`` is handed to a mission or an execute: in use until it is closed."""
        if not box._lent and not box.closed:
            box._lent = True
            self.activity.lend()

    def returned(self, box: Sandbox) -> None:
        """``box`` was closed: no longer in use."""
        if box._lent:
            box._lent = False
            self.activity.give_back()

    @property
    def removals_pending(self) -> int:
        """Background removals not finished yet."""
        return self.removals.pending

    async def drain(self) -> None:
        """Remove every sandbox queued for removal now and wait until done (at shutdown, in
        tests). Shielded: cancelling the caller does not cancel a removal half-way."""
        await self.removals.drain()

    async def create(
        self,
        image: str,
        memory_kib: int = 65536,
        runtime: str | None = None,
        *,
        box_volume: bool = False,
        lend: bool = True,
    ) -> Sandbox:
        """Start a sandbox from ``image`` with its memory fence sized for ``memory_kib``.

        ``runtime`` names the engine's container runtime (``runc``, ``runsc``); None is the
        config's, or the engine's default. Under a runtime that cannot resize a running
        container, ``memory_kib`` must be the largest limit any of its executes will have.
        ``box_volume``: keep ``/box`` on a volume even for an image whose supervisor moves
        files, so that ``get_archive`` can read it through the engine while an execute runs.
        ``lend``: the sandbox is in use from now on (a pool's ready ones are not, until taken).
        Raises ``ImageNotFound``, ``EngineUnavailable`` or ``SandboxError``.
        """
        runtime = runtime or self.config.runtime
        fence = self.config.fence_bytes(memory_kib)
        box_tmpfs = not box_volume and self.config.box_tmpfs and await self._moves_files(image)
        spec = ContainerSpec(
            image=image,
            owner=self.config.owner,
            memory_fence_bytes=fence,
            box_kib=self.config.box_kib,
            tmp_kib=self.config.tmp_kib,
            pids_limit=self.config.pids_for(runtime),
            nano_cpus=int(self.config.cpus * 1e9),
            runtime=runtime,
            box_tmpfs=box_tmpfs,
            seccomp_profile=self.config.seccomp_profile,
        )
        handle = await self.adapter.start_sandbox(spec, self.config.start_timeout_s)
        try:
            hello = json.loads(handle.hello)
        except ValueError:
            hello = None
        version = hello.get("version") if isinstance(hello, dict) else None
        protocol = version if isinstance(version, int) else 1
        sandbox = Sandbox(self, handle, image, fence, runtime, protocol)
        if not (isinstance(hello, dict) and hello.get("ok") and hello.get("op") == "hello"):
            await sandbox.close()
            raise SandboxError(
                f"image '{image}' has no judge supervisor (it said {handle.hello[:200]!r})"
            )
        features = hello.get("features")
        if isinstance(features, list):
            sandbox.features = frozenset(str(f) for f in features)
        if box_tmpfs and not sandbox.file_ops:
            await sandbox.close()
            raise SandboxError(
                f"image '{image}' is labelled {PROTOCOL_LABEL}>=2 but its supervisor speaks "
                f"protocol {sandbox.protocol}: rebuild it"
            )
        if lend:
            self.lend(sandbox)
        return sandbox

    @asynccontextmanager
    async def sandbox(
        self, image: str, memory_kib: int = 65536, runtime: str | None = None
    ) -> AsyncIterator[Sandbox]:
        """``create`` as a context manager that always closes the sandbox."""
        box = await self.create(image, memory_kib, runtime)
        try:
            yield box
        finally:
            await box.close()

    async def remove_leftovers(self) -> int:
        """Remove the sandboxes whose removal failed while the engine did not answer (call it
        when the engine is back); returns how many are still left."""
        for container_id, handle in list(self.unremoved.items()):
            try:
                await self.adapter.remove_sandbox(handle)
            except JudgeError as e:
                log.warning("cannot remove sandbox %s: %s", container_id[:12], e)
                if not isinstance(e, EngineUnavailable):
                    del self.unremoved[container_id]  # another error: the next sweep's
            else:
                del self.unremoved[container_id]
        return len(self.unremoved)

    async def sweep(self) -> tuple[int, int]:
        """Remove containers and volumes this runtime's owner label left behind."""
        return await self.adapter.sweep(self.config.owner)


# The execute's types live in execute.py and copy_path in transfer.py; callers may take them
# from here too.
__all__ = [
    "PROTOCOL_LABEL",
    "ExecOutcome",
    "ExecRequest",
    "InteractorRequest",
    "Meta",
    "Sandbox",
    "SandboxConfig",
    "SandboxRuntime",
    "copy_path",
]
