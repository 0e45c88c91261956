"""Run a mission: prepare, each task in order, final, in the order docs/missions.md gives.

``run_mission`` is the one entry every front door calls. It never raises for a user's error or a
sandbox failure: whatever happens, the result is complete and every execute says what happened to
it (``SE`` with a message when the judge could not run it). Only the cancellation of the caller's
own task propagates. Sandboxes are removed in the background: ``SandboxRuntime.drain`` awaits
their removal (the service does so at shutdown).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import posixpath
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from orchestrator.errors import (
    JudgeError,
    MissionInterrupted,
    PathNotFound,
    SandboxError,
    TransferRefused,
)
from orchestrator.mission import Execute, Mission, normalise
from orchestrator.mission import result as result_doc
from orchestrator.run.budget import ByteBudget
from orchestrator.run.fetch import fetch
from orchestrator.run.plan import (
    ExecuteDone,
    MissionDeps,
    MissionIO,
    PhaseTimes,
    _entry,
    _fence_kib,
    _Overlay,
    _plain,
    _plan,
    _Stage,
    _with_failure,
    exec_request,
)
from orchestrator.sandbox.execute import ExecOutcome, Meta
from orchestrator.sandbox.sandbox import Sandbox
from orchestrator.sandbox.tar import concat_archives

log = logging.getLogger(__name__)

CANCELLED = "cancelled"
_FETCH_CONCURRENCY = 4

# Creations that finished after their mission was cancelled twice over; referenced here so
# that they run to completion and their sandbox is removed.
_CLEANUPS: set[asyncio.Task[None]] = set()


OnExecute = Callable[[ExecuteDone], None]


class _MissionRun:
    def __init__(
        self,
        mission: Mission,
        deps: MissionDeps,
        times: PhaseTimes,
        io: MissionIO,
        on_execute: OnExecute | None = None,
    ) -> None:
        self.io = io
        self.on_execute = on_execute
        self.mission = mission
        self.deps = deps
        self.times = times
        self.image = mission.image or deps.default_image
        self.stages, self.result = _plan(mission)
        self.container_runtime = mission.runtime
        # A runtime that cannot resize a running container gets every sandbox sized once for
        # the mission's largest execute.
        self.fixed_fence_kib: int | None = None
        if mission.runtime in deps.runtime.config.fixed_fence_runtimes:
            self.fixed_fence_kib = max(
                (_fence_kib(ex) for stage in self.stages for ex in stage.executes), default=65536
            )
        self.main: Sandbox | None = None
        self.main_error: str | None = None
        self.budget = ByteBudget(deps.files_budget_bytes)

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            try:
                with self.times.phase("create"):
                    first = self.stages[0].executes
                    memory = _fence_kib(first[0]) if first else 65536
                    self.main = await self._create(memory, live_reads=self.io.live_reads)
                # Removed in the background (the runtime tracks it): the result need not wait.
                stack.callback(self.main.close_later)
                if self.io.archive:
                    with self.times.phase("transfer"):
                        await self.main.put_archive("", self.io.archive)
                if self.io.inputs:
                    with self.times.phase("transfer"):
                        await self.main.put_files(self.io.inputs)
            except (JudgeError, ValueError) as e:
                self.main_error = _problem(e)
            prepare, *tasks, final = self.stages
            self.io.sandbox = self.main
            try:
                await self._run_stage(prepare, stack)
                parallel = min(self.mission.tasks.parallel, self.deps.max_task_parallel)
                if parallel > 1 and tasks:
                    await self._run_tasks_in_parallel(tasks, parallel)
                else:
                    for stage in tasks:
                        await self._run_stage(stage, stack)
                await self._run_stage(final, stack)
            finally:
                self.io.sandbox = None
            await self._collect()

    async def _run_tasks_in_parallel(self, tasks: list[_Stage], parallel: int) -> None:
        """Up to ``parallel`` tasks at once (every execute is scoped); each writes into its own
        overlay, committed into the mission's sandbox in task order as soon as the tasks before
        it are committed. A task so sees what prepare left, its own writes, and those of some
        earlier tasks, never of later ones."""
        slots = asyncio.Semaphore(parallel)

        async def isolated(stage: _Stage) -> _Overlay:
            async with slots:
                return await self._run_isolated(stage)

        async with asyncio.TaskGroup() as group:
            running = [group.create_task(isolated(stage)) for stage in tasks]
            for stage, work in zip(tasks, running, strict=True):
                await self._commit(stage, await work)

    async def _run_isolated(self, stage: _Stage) -> _Overlay:
        overlay = _Overlay()
        failed = await self._fetch_files(stage, overlay)
        for i, ex in enumerate(stage.executes):
            if failed:
                stage.result["execute"][i] = _entry(ex, Meta.system_error(failed))
            else:
                stage.result["execute"][i] = await self._execute(ex, overlay, i)
            stage.done = i + 1
        return overlay

    async def _commit(self, stage: _Stage, overlay: _Overlay) -> None:
        """Write a parallel task's files, exports and meta files into the mission's sandbox in
        the order they happened; a failure lands in the meta of the execute it belongs to."""
        main = self.main
        if main is None:
            return
        files = {path: data for kind, path, data, _ in overlay.ops if kind == "file"}
        if files:
            try:
                with self.times.phase("transfer"):
                    await main.put_files(files)
            except (JudgeError, ValueError) as e:
                log.info("task files could not be placed in the sandbox: %s", _problem(e))
        for kind, path, data, i in overlay.ops:
            problem = ""
            if kind == "tar":
                problem = await self._put_export(main, path, data)
            elif kind == "meta":
                try:
                    with self.times.phase("meta"):
                        problem = await main.write_file(path, data)
                except (JudgeError, ValueError) as e:
                    problem = _problem(e)
                if problem:
                    problem = f"cannot write meta file '{path}': {problem}"
            if problem and i >= 0:
                entry = stage.result["execute"][i]
                meta = _with_failure(Meta.from_wire(entry["meta"]), problem)
                entry["meta"] = meta.to_dict()

    async def _collect(self) -> None:
        if not self.io.collect or not self.io.wants_collect(self.result):
            return
        for path in self.io.collect:
            if self.main is None:
                self.io.collect_errors[path] = self.main_error or "no sandbox"
                continue
            try:
                with self.times.phase("transfer"):
                    self.io.collected[path] = await self.main.get_archive(path, skip_special=True)
            except PathNotFound:
                self.io.collect_errors[path] = f"'{path}' not found in the sandbox"
            except (JudgeError, ValueError) as e:
                self.io.collect_errors[path] = _problem(e)

    async def _create(self, memory_kib: int, *, live_reads: bool = False) -> Sandbox:
        """Start a sandbox; when cancelled meanwhile, remove it before the cancellation goes on.

        The engine's calls run on threads that cannot be interrupted: a creation under way when
        the mission is cancelled still makes a container and a volume, which nobody would own.
        """
        if self.fixed_fence_kib is not None:
            memory_kib = self.fixed_fence_kib
        runtime = self.deps.runtime
        if live_reads:
            creating = asyncio.ensure_future(
                runtime.create(self.image, memory_kib, self.container_runtime, box_volume=True)
            )
        elif self.deps.pool is not None and self.container_runtime is None:
            # Warm sandboxes run under the server's default runtime only.
            creating = asyncio.ensure_future(self.deps.pool.take(self.image, memory_kib))
        else:
            creating = asyncio.ensure_future(
                runtime.create(self.image, memory_kib, self.container_runtime)
            )
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            cleanup = asyncio.create_task(_close_when_created(creating))
            _CLEANUPS.add(cleanup)
            cleanup.add_done_callback(_CLEANUPS.discard)
            await asyncio.shield(cleanup)  # cancelled again: it still runs, on its own
            raise

    async def _run_stage(self, stage: _Stage, stack: AsyncExitStack) -> None:
        failed = await self._fetch_files(stage)
        for i, ex in enumerate(stage.executes):
            if failed:
                meta = Meta.system_error(failed)
                stage.result["execute"][i] = _entry(ex, meta)
            else:
                stage.result["execute"][i] = await self._execute(ex)
            stage.done = i + 1
            if self.on_execute is not None:
                self.on_execute(ExecuteDone(stage.name, stage.task, i, stage.result["execute"][i]))

    async def _fetch_files(self, stage: _Stage, overlay: _Overlay | None = None) -> str:
        """Download a stage's files into the main sandbox (a parallel task: into its
        ``overlay``, written to the sandbox when the task commits); "" or why its executes
        cannot run.

        Memory: each download reserves what it may hold from the mission's budget before it
        starts; a finished file keeps its size reserved until it is in the sandbox. Files are
        placed in batches of a quarter of the budget, so a stage of any number of files never
        holds more than the budget (plus the archive of one batch being built).
        """
        if not stage.files:
            return self.main_error or ""
        budget = self.budget
        limits = self.deps.fetch_limits
        problems: list[str] = []
        pending: dict[str, bytes] = {}
        held_for_pending = 0
        placing = asyncio.Lock()

        async def place() -> None:
            nonlocal pending, held_for_pending
            async with placing:
                batch, held = pending, held_for_pending
                pending, held_for_pending = {}, 0
                try:
                    if batch and overlay is not None:
                        # Held by the overlay until the task commits, outside the budget.
                        overlay.ops.extend(("file", n, d, -1) for n, d in batch.items())
                    elif batch and self.main is not None:
                        with self.times.phase("transfer"):
                            await self.main.put_files(batch)
                except (JudgeError, ValueError) as e:
                    problems.append(f"files could not be placed in the sandbox: {_problem(e)}")
                finally:
                    del batch
                    await budget.release(held)

        async def one(name: str, url: str) -> tuple[int, bytes, str]:
            nonlocal held_for_pending
            held = await budget.reserve(limits.max_bytes)
            try:
                got = await fetch(self.deps.session, url, limits, self.deps.blob_reader)
            except BaseException:
                await budget.release(held)
                raise
            if got.data is None or got.error:
                await budget.release(held)
                return got.status, got.head, got.error or "no data"
            keep = min(len(got.data), held)
            await budget.release(held - keep)
            pending[name] = got.data
            held_for_pending += keep
            if held_for_pending >= budget.flush_at:
                await place()
            return got.status, got.head, ""

        # A fixed number of fetchers, not one task per file: 10,000 tasks made at once (and run
        # in one pass of the loop, a data: URL never waiting) held the event loop for a second.
        items = list(stage.files.items())
        fetched: list[tuple[int, bytes, str]] = [(0, b"", "")] * len(items)
        ahead = iter(range(len(items)))

        async def fetcher() -> None:
            for i in ahead:
                fetched[i] = await one(*items[i])
                await asyncio.sleep(0)  # let the loop run between files (data: URLs never wait)

        with self.times.phase("fetch"):
            await asyncio.gather(*(fetcher() for _ in range(min(_FETCH_CONCURRENCY, len(items)))))
            await place()
        for name, (status, head, error) in zip(stage.files, fetched, strict=True):
            stage.result["file"][name] = result_doc.file_entry(status, head)
            if error:
                problems.append(f"file '{name}' could not be downloaded: {error}")
        if self.main_error:
            problems.insert(0, self.main_error)
        return "; ".join(problems)

    async def _execute(
        self, ex: Execute, overlay: _Overlay | None = None, index: int = -1
    ) -> dict[str, Any]:
        main = self.main
        if main is None:
            return _entry(ex, Meta.system_error(self.main_error or "no sandbox"))
        try:
            if ex.compare is not None:
                with self.times.phase("execute"):
                    outcome = await _compare(main, ex.compare.output, ex.compare.answer)
            elif ex.scope.enable:
                outcome = await self._scoped(ex, main, overlay, index)
            else:
                # A version 2 supervisor writes the meta file in the same round trip.
                with self.times.phase("execute"):
                    ask = main.file_ops and ex.interactor is None
                    outcome = await main.run(exec_request(ex, ex.meta if ask else ""))
        except JudgeError as e:
            return _entry(ex, Meta.system_error(_problem(e)))
        meta = outcome.meta
        # Its bytes equal json.dumps' for printable ASCII messages; others are written here.
        if outcome.meta_file_error is not None and _plain(meta.message):
            if outcome.meta_file_error:
                problem = f"cannot write meta file '{ex.meta}': {outcome.meta_file_error}"
                meta = _with_failure(meta, problem)
            return _entry(ex, meta, outcome)
        if overlay is not None:  # written into the mission's sandbox when the task commits
            overlay.ops.append(("meta", ex.meta, json.dumps(meta.to_dict()).encode(), index))
            if ex.interactor is not None and outcome.interactor is not None:
                inter = outcome.interactor.meta
                overlay.ops.append(
                    ("meta", ex.interactor.meta, json.dumps(inter.to_dict()).encode(), index)
                )
            return _entry(ex, meta, outcome)
        meta = await self._write_meta(main, ex.meta, outcome.meta)
        imeta: Meta | None = None
        if ex.interactor is not None and outcome.interactor is not None:
            imeta = await self._write_meta(main, ex.interactor.meta, outcome.interactor.meta)
        return _entry(ex, meta, outcome, imeta)

    async def _write_meta(self, main: Sandbox, path: str, meta: Meta) -> Meta:
        """Write ``meta`` to ``path`` in the main sandbox; the meta, amended if that failed."""
        try:
            with self.times.phase("meta"):
                problem = await main.write_file(path, json.dumps(meta.to_dict()).encode())
        except (JudgeError, ValueError) as e:
            problem = _problem(e)
        if problem:
            meta = _with_failure(meta, f"cannot write meta file '{path}': {problem}")
        return meta

    async def _scoped(
        self, ex: Execute, main: Sandbox, overlay: _Overlay | None = None, index: int = -1
    ) -> ExecOutcome:
        """Run ``ex`` in a fresh sandbox with its imports, then copy its exports back.

        Docker round trips dominate a scoped execute, so the imports are read from the main
        sandbox while the new one starts, and arrive in it as one archive; the scoped sandbox
        is removed in the background (tracked by the runtime, awaited at shutdown).
        """
        with self.times.phase("create"):
            created, pulled = await asyncio.gather(
                self._create(_fence_kib(ex)),
                self._pull_imports(ex, main, overlay),
                return_exceptions=True,
            )
        if isinstance(created, BaseException):
            raise created
        scoped = created
        try:
            if isinstance(pulled, BaseException):
                raise pulled
            if isinstance(pulled, str):
                return ExecOutcome(Meta.system_error(pulled))
            if pulled:
                with self.times.phase("transfer"):
                    await scoped.put_archive("", pulled)
            with self.times.phase("execute"):
                outcome = await scoped.run(exec_request(ex))
            meta = outcome.meta
            for path in ex.scope.export:
                problem = await self._export(scoped, main, path, overlay, index)
                if problem:
                    meta = _with_failure(meta, problem)
            return dataclasses.replace(outcome, meta=meta)
        finally:
            scoped.close_later()

    async def _pull_imports(
        self, ex: Execute, main: Sandbox, overlay: _Overlay | None = None
    ) -> bytes | str:
        """One tar holding every import (b"" for none), or why the imports failed.

        Read one after the other: nested paths (``a``, ``a/b``, ``a/b/c`` ...) may each hold
        the same big file, so together they may come to more than the sandbox holds; beyond the
        mission's file budget the execute is refused rather than the server's memory spent. A
        parallel task's own writes (its overlay) come first, the mission's sandbox after.
        """
        paths = ex.scope.import_
        if not paths:
            return b""
        tars: list[bytes] = []
        total = 0
        for path in paths:
            try:
                # Off the loop: building the tar is proportional to the file.
                own = await asyncio.to_thread(overlay.lookup, path) if overlay is not None else None
                tar = (
                    own
                    if own is not None
                    else await main.get_archive(path, max_bytes=self.budget.total)
                )
            except PathNotFound:
                return f"import '{path}': not found"
            except TransferRefused as e:  # its message starts with the quoted path
                return f"import {e}"
            total += len(tar)
            if len(tars) >= 1 and total > self.budget.total:
                return (
                    f"import '{path}': the imports of this execute come to more than "
                    f"{self.budget.total} bytes, the mission's file budget"
                )
            tars.append(tar)
        return await asyncio.to_thread(concat_archives, tars)

    async def _export(
        self,
        scoped: Sandbox,
        main: Sandbox,
        path: str,
        overlay: _Overlay | None = None,
        index: int = -1,
    ) -> str:
        try:
            with self.times.phase("transfer"):
                # An export is held once read and once vetted: half the budget each.
                data = await scoped.get_archive(path, max_bytes=self.budget.total // 2)
        except PathNotFound:
            return f"export '{path}': not found in the scoped sandbox"
        except TransferRefused as e:  # its message starts with the quoted path
            return f"export {e}"
        if overlay is not None:  # copied into the mission's sandbox when the task commits
            overlay.ops.append(("tar", path, data, index))
            return ""
        return await self._put_export(main, path, data)

    async def _put_export(self, main: Sandbox, path: str, data: bytes) -> str:
        parent = posixpath.dirname(path)
        try:
            with self.times.phase("transfer"):
                await main.put_archive(parent, data)
        except PathNotFound:
            return f"export '{path}': directory '{parent}' does not exist in the sandbox"
        except TransferRefused as e:  # a link on the way into the main sandbox
            return f"export '{path}': into {e}"
        except SandboxError as e:  # e.g. the parent is a file: the engine refuses to unpack
            return f"export '{path}': {_problem(e)}"
        return ""

    def mark_unfinished(self, message: str) -> None:
        for stage in self.stages:
            for i in range(stage.done, len(stage.executes)):
                stage.result["execute"][i] = _entry(stage.executes[i], Meta.system_error(message))


async def _compare(main: Sandbox, output: str, answer: str) -> ExecOutcome:
    """A ``compare`` execute: the outcome a ``cmp output answer`` check would have, without a
    process: equal is status "" (exit 0); different is RE, exit 1, with the first differing
    byte; a file that cannot be read (missing, a link, not a regular file) is RE, exit 2."""
    if not main.file_ops:
        return ExecOutcome(
            Meta.system_error(
                f"image '{main.image}' has a supervisor without file operations, which "
                "'compare' needs (rebuild it on the current judge/base)"
            )
        )
    got = await main.compare_files(output, answer)
    if isinstance(got, str):
        return ExecOutcome(Meta(status="RE", message=f"cannot compare: {got}", exit_code=2))
    if got >= 0:
        message = f"'{output}' and '{answer}' differ at byte {got}"
        return ExecOutcome(Meta(status="RE", message=message, exit_code=1))
    return ExecOutcome(Meta())


async def _close_when_created(creating: asyncio.Future[Sandbox]) -> None:
    try:
        box = await creating
    except Exception:  # the creation failed: nothing to remove
        return
    box.close_later()


class _Interrupt(Exception):
    """Unwinds a mission's run at the first infrastructure failure (``_problem``)."""


def _problem(e: JudgeError | ValueError) -> str:
    """What a failure means for the execute or file it hit; an ``infrastructure`` failure (the
    engine, a supervisor gone) ends the run instead (``_Interrupt``): it is no verdict."""
    if getattr(e, "infrastructure", False):
        raise _Interrupt(str(e)) from e
    return str(e)


def _interruption(error: BaseException) -> str | None:
    """Why a run was interrupted, if ``error`` is (or a task group's error holds) an
    ``_Interrupt``."""
    if isinstance(error, _Interrupt):
        return str(error)
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (why := _interruption(inner)) is not None:
                return why
    return None


async def run_mission(
    mission: Mission,
    deps: MissionDeps,
    *,
    cancel: asyncio.Event | None = None,
    times: PhaseTimes | None = None,
    io: MissionIO | None = None,
    on_execute: OnExecute | None = None,
    inline: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``mission`` and return ``(normalised mission, mission_result)``.

    Setting ``cancel`` stops the mission: its sandboxes are killed and every execute that had
    not finished reports ``SE`` "cancelled"; the result is still complete. Failures of downloads
    and images are reported in the result. A failure of the engine or of a sandbox's supervisor
    (an ``infrastructure`` error) is no verdict: the run stops and ``MissionInterrupted`` is
    raised, for the caller to run the mission again. If the calling task itself is
    cancelled, the sandboxes are removed and ``CancelledError`` propagates. ``on_execute`` is
    called (on the event loop, must not block) each time an execute's entry is final.
    ``inline``: the caller knows the mission is small (no tasks, a few executes, a small
    document): it is echoed and planned on the event loop, not on threads.
    """
    plan_args = (mission, deps, times or PhaseTimes(), io or MissionIO(), on_execute)
    if inline:
        # Two thread hops would cost more than the work (a hello world: ~0.05 ms).
        normalised = normalise(mission)
        run = _MissionRun(*plan_args)
    else:
        # Both are proportional to the mission (thousands of executes): off the event loop.
        normalised = await asyncio.to_thread(normalise, mission)
        run = await asyncio.to_thread(_MissionRun, *plan_args)
    work = asyncio.create_task(run.run(), name="mission")
    waiters: set[asyncio.Future[Any]] = {work}
    stopper: asyncio.Task[bool] | None = None
    if cancel is not None:
        stopper = asyncio.create_task(cancel.wait(), name="mission-cancel")
        waiters.add(stopper)
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stopper is not None:
            stopper.cancel()
        if not work.done():
            # Either our caller was cancelled or the mission was: the work's own finally blocks
            # hand every sandbox to the runtime's background removal before it finishes.
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    if work.cancelled():
        run.mark_unfinished(CANCELLED)
    elif (error := work.exception()) is not None:
        if (why := _interruption(error)) is not None:
            raise MissionInterrupted(why) from error
        log.error("mission failed inside the judge", exc_info=error)
        run.mark_unfinished(f"internal error: {error}")
    return normalised, run.result


__all__ = [
    "CANCELLED",
    "ExecuteDone",
    "MissionDeps",
    "MissionIO",
    "OnExecute",
    "PhaseTimes",
    "run_mission",
]
