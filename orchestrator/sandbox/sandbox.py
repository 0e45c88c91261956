"""Sandboxes: hardened containers with a resident supervisor, driven through an async API.

A ``SandboxRuntime`` starts sandboxes; a ``Sandbox`` runs executes (one at a time) and moves files
as tar archives. Verdicts come back as data (``Meta``); exceptions mean the judge itself failed.
The wire format spoken with the supervisor is ``images/supervisor/PROTOCOL.md``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import json
import logging
import posixpath
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from orchestrator.errors import (
    EngineUnavailable,
    JudgeError,
    PathNotFound,
    SandboxError,
    TransferRefused,
)
from orchestrator.paths import check_relative_path
from orchestrator.sandbox.channelfiles import (
    MAX_LIST_ENTRIES,
    Listed,
    PutEntry,
    files_to_entries,
    parse_listing,
    put_lines,
    raw_tar,
    read_plan,
    read_request,
    tar_to_entries,
)
from orchestrator.sandbox.docker import BOX_PATH, ContainerHandle, ContainerSpec, DockerAdapter
from orchestrator.sandbox.execute import (
    ExecOutcome,
    ExecRequest,
    InteractorRequest,
    Meta,
    outcome_from_wire,
)
from orchestrator.sandbox.seccomp import profile_json
from orchestrator.sandbox.stream import ExecStream
from orchestrator.sandbox.tar import build_tar, vet_archive

log = logging.getLogger(__name__)

# Time the supervisor may take beyond an execute's real-time limit to kill, reap and answer.
_ANSWER_MARGIN_S = 15.0
# Time one file request (at most half a MiB of data) may take.
_TRANSFER_TIMEOUT_S = 30.0
# Data below this size is encoded or parsed on the event loop; above, on a thread.
_INLINE_BYTES = 64 * 1024
# The image label saying which supervisor protocol an image speaks.
PROTOCOL_LABEL = "judge.protocol"
_PROTOCOL_RECHECK_S = 10.0

T = TypeVar("T")


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` on a thread: work proportional to a transfer's size never blocks the loop."""
    return await asyncio.to_thread(fn, *args)


def _vetted_listing(
    listing: list[Listed], pieces: dict[int, list[bytes]], what: str, cap: int, skip_special: bool
) -> bytes:
    contents = {i: b"".join(parts) for i, parts in pieces.items()}
    return vet_archive(
        raw_tar(listing, contents), what, max_file_bytes=cap, skip_special=skip_special
    )


@dataclass(frozen=True)
class SandboxConfig:
    """Engine-wide sandbox settings (not per execute)."""

    owner: str = "judge"
    box_kib: int = 256 * 1024
    tmp_kib: int = 64 * 1024
    pids_limit: int = 128
    cpus: float = 1.0
    fence_slack_kib: int = 16 * 1024
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


class Sandbox:
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
            answer = (
                json.loads(raw) if len(raw) < _INLINE_BYTES else await _off_loop(json.loads, raw)
            )
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
        if req.interactor is not None or req.stdin or req.stdout or req.stderr:
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

    async def write_file(self, path: str, data: bytes) -> str:
        """Write a small file as the sandbox user; returns "" or the reason it failed.

        Raises ``SandboxError`` when the sandbox itself failed.
        """
        check_relative_path(path)
        answer = await self._request(
            {"op": "write", "path": path, "data": base64.b64encode(data).decode()}, 10.0
        )
        return "" if answer.get("ok") else str(answer.get("error", "write failed"))

    async def put_files(self, files: Mapping[str, bytes]) -> None:
        """Place files (relative path -> content) in the sandbox, owned by the sandbox user.

        Parent directories are created. Raises ``ValueError`` for an unsafe path and
        ``JudgeError`` when the copy fails.
        """
        if not files:
            return
        # Nested names land in directories that an earlier execute may have made links.
        parents = {posixpath.dirname(check_relative_path(n)) for n in files} - {""}
        await self.refuse_links(sorted(parents), last=True)
        if self.file_ops:
            await self._put(files_to_entries(files), parents=True, directory="")
        else:
            # Building is proportional to the files: off the event loop.
            await self.put_archive("", await asyncio.to_thread(build_tar, files))

    async def refuse_links(self, paths: list[str], *, last: bool) -> None:
        """Refuse when a component of one of ``paths`` is a symbolic link (the last one too
        when ``last``); a missing component is left for the transfer itself to report.

        The engine copies as root and follows links in a path's leading components, so
        ``lnk/passwd`` with ``lnk -> /etc`` would read the image's ``/etc/passwd``. Nothing runs
        in the sandbox between executes, so what is checked here stays true for the transfer;
        before its first execute a sandbox holds no link at all (only vetted archives went in).
        Raises ``TransferRefused`` (its message starts with the quoted path) or ``SandboxError``.
        """
        if not self._ran:
            return
        owners: dict[str, str] = {}
        for rel in paths:
            parts = rel.split("/") if rel else []
            for i in range(len(parts) if last else len(parts) - 1):
                owners.setdefault("/".join(parts[: i + 1]), rel)
        if not owners:
            return
        prefixes = sorted(owners)  # a parent before its children
        if self.file_ops:
            # The supervisor never follows a link anyway; this names the link as the engine
            # path does, one listing (stopped after its first entry) per component.
            links = [await self._link_target(p) for p in prefixes]
        else:
            stats = await self._runtime.adapter.lstat_paths(
                self.container_id, [posixpath.join(BOX_PATH, p) for p in prefixes]
            )
            links = [st.link_target if st is not None and st.is_link else None for st in stats]
        for prefix, target in zip(prefixes, links, strict=True):
            if target is not None:
                raise TransferRefused(
                    f"'{owners[prefix]}': '{prefix}' is a link (to '{target}'); "
                    "paths are never followed through links"
                )

    async def _link_target(self, path: str) -> str | None:
        """The target of ``path`` when it is a symbolic link, else None (missing, or anything
        else), asked of the supervisor without following anything."""
        answer = await self._request(
            {"op": "list", "path": path, "max_entries": 1}, _TRANSFER_TIMEOUT_S
        )
        entries = answer.get("entries") if answer.get("ok") else None
        if isinstance(entries, list) and entries:
            first = entries[0]
            if isinstance(first, list) and len(first) == 5 and first[1] == "l":
                return str(first[4])
        return None

    async def put_archive(self, directory: str, data: bytes) -> None:
        """Unpack a (vetted) tar into ``directory`` ("" = the root), which must exist.

        Raises ``PathNotFound`` when the directory is missing and ``TransferRefused`` when one of
        its components is a link.
        """
        if directory:
            await self.refuse_links([check_relative_path(directory)], last=True)
        if self.file_ops:
            entries = await _off_loop(tar_to_entries, data, directory)
            await self._put(entries, parents=False, directory=directory)
            return
        target = BOX_PATH if not directory else posixpath.join(BOX_PATH, directory)
        await self._runtime.adapter.put_archive(self.container_id, target, data)

    async def _put(self, entries: list[PutEntry], *, parents: bool, directory: str) -> None:
        """Place ``entries`` with ``put`` requests, in order; raises ``PathNotFound`` (a missing
        directory) or ``SandboxError`` naming the entry that could not be written."""
        total = sum(len(e.data or b"") + len(e.path) for e in entries)
        if total < _INLINE_BYTES:
            lines = put_lines(entries, parents=parents)
        else:
            lines = await _off_loop(functools.partial(put_lines, entries, parents=parents))
        for line, paths in lines:
            answer = await self._request_line(line, _TRANSFER_TIMEOUT_S)
            if answer.get("ok"):
                continue
            error = str(answer.get("error", "put failed"))
            if answer.get("code") == "ENOENT":
                raise PathNotFound(directory or paths[int(answer.get("index", 0) or 0)])
            raise SandboxError(f"cannot copy into the sandbox: {error}")

    async def get_archive(
        self, path: str, *, skip_special: bool = False, max_bytes: int | None = None
    ) -> bytes:
        """Return a vetted tar of ``path`` whose top member is its last component.

        ``path`` "" is the whole sandbox (top member ``box``). Reads at most ``max_bytes`` of
        files (default: the sandbox's disk size). Raises ``PathNotFound``, ``TransferRefused``
        (a link or device unless ``skip_special``, too large) or ``SandboxError``.
        """
        rel = check_relative_path(path) if path else ""
        # The last component may be a link: the archive then holds it as a link, refused below.
        await self.refuse_links([rel], last=False)
        cap = self._runtime.config.box_kib * 1024
        if max_bytes is not None:
            cap = min(cap, max_bytes)
        # While an execute holds the channel, a volume-backed /box is read through the engine
        # instead (a front door reading a running command's output); a tmpfs one waits.
        busy = self._channel.locked() and self._handle.volume_name is not None
        if self.file_ops and not busy:
            got = await self._get_over_channel(rel, cap, skip_special)
            if got is not None:
                return got
        # The raw tar carries 512-byte headers and padding beyond the files' own bytes.
        raw = await self._runtime.adapter.get_archive(
            self.container_id,
            posixpath.join(BOX_PATH, rel) if rel else BOX_PATH,
            cap + cap // 4 + 65536,
        )
        # Vetting walks every member (tens of thousands of files take seconds): off the loop.
        return await asyncio.to_thread(
            vet_archive, raw, f"'{rel or '.'}'", max_file_bytes=cap, skip_special=skip_special
        )

    async def _get_over_channel(self, rel: str, cap: int, skip_special: bool) -> bytes | None:
        """``get_archive`` by ``list`` and ``read``; None when the listing has too many entries
        for one answer (the engine's archive call then does it)."""
        what = f"'{rel or '.'}'"
        raw_entries: list[Any] = []
        while True:  # pages of at most 768 KiB, each after the entries already answered
            answer = await self._request(
                {
                    "op": "list",
                    "path": rel,
                    "max_bytes": cap,
                    "max_entries": MAX_LIST_ENTRIES,
                    "skip": len(raw_entries),
                },
                _TRANSFER_TIMEOUT_S,
            )
            page = answer.get("entries") if answer.get("ok") else None
            if not isinstance(page, list) or not answer.get("more") or not page:
                break
            raw_entries += page
        if not answer.get("ok"):
            code = answer.get("code")
            if code == "ENOBUFS":
                if self._handle.volume_name is None:  # a tmpfs mount: the engine cannot read it
                    raise TransferRefused(f"{what} holds too many entries to copy")
                return None
            if code == "ENOENT":
                raise PathNotFound(rel or ".")
            if code == "E2BIG":
                raise TransferRefused(f"{what} is larger than {cap // 1024} KiB")
            if code in ("ELOOP", "ENOTDIR", "EACCES", "EINVAL"):
                raise TransferRefused(f"{what}: {answer.get('error', 'refused')}")
            raise SandboxError(f"cannot copy out of the sandbox: {answer.get('error', '?')}")
        raw_entries += answer.get("entries") or []
        try:
            listing = await _off_loop(parse_listing, raw_entries)
        except ValueError as e:
            self._broken = "the sandbox supervisor answered garbage"
            raise SandboxError(self._broken, container_id=self.container_id) from e
        pieces: dict[int, list[bytes]] = {}
        refused = not skip_special and any(e.kind in ("l", "o") for e in listing)
        # When a link or device will be refused anyway, the files' bytes are not needed.
        for batch in [] if refused else read_plan(listing, rel):
            got = await self._request(read_request(listing, rel, batch), _TRANSFER_TIMEOUT_S)
            if not got.get("ok"):
                raise TransferRefused(f"{what}: {got.get('error', 'cannot read')}")
            data = got.get("data")
            if not isinstance(data, list) or len(data) != len(batch):
                self._broken = "the sandbox supervisor answered garbage"
                raise SandboxError(self._broken, container_id=self.container_id)
            for (i, _offset, n), encoded in zip(batch, data, strict=True):
                if not isinstance(encoded, str):
                    encoded = ""
                if len(encoded) < _INLINE_BYTES:
                    piece = base64.b64decode(encoded)
                else:
                    piece = await _off_loop(base64.b64decode, encoded)
                if len(piece) != n:  # nothing runs between executes: a file cannot change
                    raise TransferRefused(f"{what}: '{listing[i].name}' changed while read")
                pieces.setdefault(i, []).append(piece)
        return await _off_loop(_vetted_listing, listing, pieces, what, cap, skip_special)

    async def close(self) -> None:
        """Kill and remove the container and its volume. Idempotent; never raises."""
        if self.closed:
            return
        self.closed = True
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

        The removal is tracked by the runtime (``SandboxRuntime.drain`` awaits it), so nobody
        waits for the engine's slowest call on a mission's critical path. Idempotent.
        """
        if self.closed:
            return
        self.closed = True
        self._runtime.track(self._remove())


class SandboxRuntime:
    """Starts sandboxes on one Docker engine with one set of engine-wide settings."""

    def __init__(self, adapter: DockerAdapter, config: SandboxConfig) -> None:
        self.adapter = adapter
        self.config = config
        self._background: set[asyncio.Task[None]] = set()
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

    def track(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (a removal) in the background until done; ``drain`` awaits it."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def removals_pending(self) -> int:
        """Background removals not finished yet."""
        return len(self._background)

    async def drain(self) -> None:
        """Wait until every background removal has finished (at shutdown, in tests).

        Shielded: cancelling the caller does not cancel a removal half-way.
        """
        while self._background:
            await asyncio.shield(asyncio.gather(*self._background, return_exceptions=True))

    async def create(
        self,
        image: str,
        memory_kib: int = 65536,
        runtime: str | None = None,
        *,
        box_volume: bool = False,
    ) -> Sandbox:
        """Start a sandbox from ``image`` with its memory fence sized for ``memory_kib``.

        ``runtime`` names the engine's container runtime (``runc``, ``runsc``); None is the
        config's, or the engine's default. Under a runtime that cannot resize a running
        container, ``memory_kib`` must be the largest limit any of its executes will have.
        ``box_volume``: keep ``/box`` on a volume even for an image whose supervisor moves
        files, so that ``get_archive`` can read it through the engine while an execute runs.
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


async def copy_path(src: Sandbox, path: str, dst: Sandbox, directory: str) -> None:
    """Copy ``path`` (file or directory) of ``src`` into ``directory`` of ``dst``.

    It arrives under its last component. Nothing touches the host file system. Raises
    ``PathNotFound`` (source or destination directory missing), ``TransferRefused`` or
    ``SandboxError``.
    """
    data = await src.get_archive(path)
    await dst.put_archive(directory, data)


# The execute's types live in execute.py; callers may take them from here too.
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
