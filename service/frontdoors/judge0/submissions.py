"""Judge0 submissions as missions: create, read, run hooks, judge, delete.

A submission is a row of the door (its inputs and, once ended, its outcome) and a mission of
kind ``judge0`` that runs it. The row is written first and the mission names it by token: when a
worker starts the mission (``started``) the door reads the inputs back from the row, so a
restart or a re-run needs nothing held in memory; when it ends (``finished``) the door judges
the files read back from ``.j0/o`` and stores the outcome. Compiled languages ask the compile
cache first: a batch of one source compiles once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import tarfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.run.runner import MissionIO
from service.frontdoors.archives import ArchiveRefused, read_tar, read_zip
from service.frontdoors.judge0 import plan, verdict, wire
from service.frontdoors.judge0.languages import Judge0Language
from service.frontdoors.judge0.repo import Judge0Repo, SqlRunner, SubmissionRow, ended_row
from service.frontdoors.judge0.request import Judge0Config, SubmissionRequest
from service.pipeline.compilecache import CompileCache, CompiledBox
from service.store import MissionRow

log = logging.getLogger(__name__)

KIND = "judge0"
LOST_AFTER_S = 60.0
# Outputs and an expected output up to this size are judged on the loop: a thread's hand-overs
# cost more than the work there.
INLINE_JUDGE_BYTES = 64 * 1024
BATCH_CALLBACK = "batch_callback"  # payload key of the mission that calls a batch back
LOST = "the server stopped while storing this submission's outcome; submit it again"
_TEXT_PARAMS = ("source_code", "stdin", "expected_output", "additional_files")
_EMPTY_TAR = b"\0" * 1024


def request_params(req: SubmissionRequest) -> dict[str, Any]:
    """The non-text parameters of a request, as stored in the row."""
    return {k: v for k, v in asdict(req).items() if k not in _TEXT_PARAMS}


def request_of(row: SubmissionRow) -> SubmissionRequest:
    return SubmissionRequest(
        source_code=row.source_code,
        stdin=row.stdin,
        expected_output=row.expected_output,
        additional_files=row.additional_files,
        **row.params,
    )


def additional_files(data: bytes | None, max_kib: int) -> dict[str, bytes]:
    """The files of an ``additional_files`` zip, vetted (no absolute names, ``..`` or links)
    and capped at ``max_extract_size``; raises ``ArchiveRefused``."""
    if not data:
        return {}
    return read_zip(data, "additional_files", max_bytes=max_kib * 1024)


def read_outputs(collected: bytes | None, cap_bytes: int) -> dict[str, bytes]:
    """The files of ``.j0/o`` read back from the sandbox (a vetted tar), by base name."""
    if not collected:
        return {}
    files = read_tar(collected, "outputs", max_bytes=cap_bytes)
    return {name.rsplit("/", 1)[-1]: data for name, data in files.items()}


def _empty_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w"):
        pass
    return buf.getvalue() or _EMPTY_TAR


@dataclass
class Judge0IO(MissionIO):
    """A submission's files, the compile-cache key of its compile (None: no compile), and its
    row as it was stored with the mission (its end is judged from it without reading it back).

    ``recorded``: the runs' outputs, when their records held them whole and nothing else was
    wanted from ``.j0/o`` (then it is not read back); None until the mission's run asked."""

    compile_key: str | None = None
    row: SubmissionRow | None = None
    recorded: dict[str, bytes] | None = None
    # Set by ``Submissions.ending``: judged, its outcome written with the mission's end (and
    # the row as it then ended, None when the submission had ended already).
    judged: bool = False
    ended: SubmissionRow | None = None

    def wants_collect(self, result: dict[str, Any]) -> bool:
        if self.compile_key is not None or self.row is None:
            return True  # its compile goes to the cache: the packed box is read back
        self.recorded = recorded_outputs(result, self.row.params)
        return self.recorded is None


def recorded_outputs(result: dict[str, Any], params: dict[str, Any]) -> dict[str, bytes] | None:
    """The runs' outputs by the names of ``.j0/o`` (``out0``, ``err0``, ...) from their records,
    or None when one may be longer than its record (it filled it) or the result is not as the
    plan made it."""
    try:
        runs = int(params["number_of_runs"])
        redirect = bool(params["redirect_stderr_to_stdout"])
        executes = result["prepare"]["execute"][-runs:]
        if runs < 1 or len(executes) != runs:
            return None
        outputs: dict[str, bytes] = {}
        for i, entry in enumerate(executes):
            record = entry["record"]
            streams = [("stdout", f"out{i}")]
            if not redirect:
                streams.append(("stderr", f"err{i}"))
            for stream, name in streams:
                data = base64.b64decode(record[stream], validate=True)
                if len(data) >= plan.RECORD_BYTES:
                    return None
                outputs[name] = data
        return outputs
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None


@dataclass
class _Compiling:
    key: str
    cached: CompiledBox | None  # None: this mission compiles the key itself


class Submissions:
    """The door's submissions over its repository, the workers and the compile cache."""

    def __init__(
        self,
        repo: Judge0Repo,
        cache: CompileCache,
        config: Callable[[], Judge0Config],
        languages: Callable[[], dict[int, Judge0Language]],
        mission_state: Callable[[int], Awaitable[MissionRow | None]],
        on_end: Callable[[SubmissionRow], Awaitable[None]] | None = None,  # of batch members
    ) -> None:
        self.repo = repo
        self.cache = cache
        self._config = config
        self._languages = languages
        self._mission_state = mission_state
        self._on_end = on_end
        self._compiling: dict[int, _Compiling] = {}
        # Tokens a synchronous request waits for -> the row as it ended (None until then).
        self._awaited: dict[str, SubmissionRow | None] = {}
        self._empty_tar = _empty_tar()

    # -- creating --------------------------------------------------------------------------------

    def new_row(
        self, token_hash: str, req: SubmissionRequest, *, batch: str = "", now: float | None = None
    ) -> SubmissionRow:
        return SubmissionRow(
            token=wire.new_token(),
            token_hash=token_hash,
            mission_id=None,
            batch=batch,
            created_at=time.time() if now is None else now,
            finished_at=None,
            language_id=req.language_id,
            params=request_params(req),
            source_code=req.source_code,
            stdin=req.stdin,
            expected_output=req.expected_output,
            additional_files=req.additional_files,
            status_id=wire.IN_QUEUE,
            outcome=None,
            stdout=None,
            stderr=None,
            compile_output=None,
        )

    def plan_of(self, row: SubmissionRow) -> tuple[plan.Plan, Judge0Language, SubmissionRequest]:
        """The mission of a row; raises ``LookupError`` when its language is no longer served
        and ``ArchiveRefused`` for a zip that cannot be read."""
        lang = self._languages().get(row.language_id)
        if lang is None:
            raise LookupError(f"language with id {row.language_id} is no longer served")
        req = request_of(row)
        config = self._config()
        files = additional_files(req.additional_files, config.max_extract_size)
        built = plan.build(req, lang, config, files, token=row.token, batch=row.batch)
        return built, lang, req

    # -- the mission's hooks ---------------------------------------------------------------------

    def prepare(self, row: SubmissionRow) -> tuple[plan.Plan, Judge0IO]:
        """A row's mission, and its files with the compile-cache key of its compile
        (``plan_of``'s errors)."""
        built, lang, req = self.plan_of(row)
        key = None
        if built.compiles:
            argv = plan.compile_argv(req, lang) or ()
            key = CompileCache.key(
                row.token_hash,
                lang.image,
                lang.version,
                "\0".join(argv),
                lang.source_file or "",
                req.source_code or b"",
                req.additional_files or b"",
            )
        io = Judge0IO(inputs=built.inputs, collect=[plan.OUT_DIR], compile_key=key, row=row)
        return built, io

    @contextmanager
    def awaited(self, token: str) -> Iterator[Callable[[], SubmissionRow | None]]:
        """While the caller waits for ``token`` to end: yields what returns its row as it ended
        here (None when it ended elsewhere or not yet: read it then)."""
        self._awaited[token] = None
        try:
            yield lambda: self._awaited.get(token)
        finally:
            self._awaited.pop(token, None)

    async def started(self, mission: MissionRow, given: MissionIO | None) -> MissionIO | None:
        """The files of a starting mission: those prepared when it was submitted (in this
        process), else rebuilt from its row (None: the row is gone)."""
        payload = mission.mission.get("return", {}).get("payload", {})
        if payload.get(BATCH_CALLBACK):
            return MissionIO()  # it only carries its batch's callback
        token = payload.get("token")
        if not isinstance(token, str):
            return None
        if isinstance(given, Judge0IO):
            io = given
        else:
            row = await self.repo.get(token)  # stored with its mission
            if row is None:
                return None
            try:
                _, io = await asyncio.to_thread(self.prepare, row)
            except (LookupError, ArchiveRefused) as e:
                log.warning("judge0 submission %s cannot run: %s", token, e)
                return None
        if io.compile_key is not None:
            wait_s = self._config().max_cpu_time_limit * 1.5 + 5
            cached = await self.cache.claim(io.compile_key, wait_s)
            self._compiling[mission.id] = _Compiling(io.compile_key, cached)
            if cached is not None:
                inputs = plan.cached_inputs(io.inputs, cached.box or self._empty_tar)
                return Judge0IO(inputs=inputs, collect=[plan.OUT_DIR], row=io.row)
        return io

    async def ending(
        self, mission_id: int, state: str, result: dict[str, Any], mio: MissionIO
    ) -> Callable[[SqlRunner], Awaitable[None]] | None:
        """Judge a mission that ran to its end, before its end is stored: returns what writes
        the outcome in the transaction storing it (None: no row in hand, ``finished`` judges)."""
        if not isinstance(mio, Judge0IO) or mio.row is None:
            return None
        row = mio.row
        columns, finished_at = await self._judged(mission_id, row, state, result, mio)
        mio.judged = True

        async def write(tx: SqlRunner) -> None:
            if await self.repo.finish(row.token, columns, finished_at, runner=tx):
                mio.ended = ended_row(row, columns, finished_at)  # as a read would give it

        return write

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, mio: MissionIO
    ) -> None:
        """Judge an ended mission and store its outcome (once), unless ``ending`` did with the
        mission's end; then report the end."""
        if isinstance(mio, Judge0IO) and mio.judged:
            if mio.ended is not None:
                await self._report(mio.ended)
            return
        row = mio.row if isinstance(mio, Judge0IO) and mio.row is not None else None
        if row is None:
            row = await self.repo.by_mission(mission_id)
        if row is None:
            compiling = self._compiling.pop(mission_id, None)
            if compiling is not None and compiling.cached is None:
                self.cache.abandon(compiling.key)
            return
        columns, finished_at = await self._judged(mission_id, row, state, result, mio)
        if await self.repo.finish(row.token, columns, finished_at):
            await self._report(ended_row(row, columns, finished_at))  # as a read would give it

    async def _report(self, ended: SubmissionRow) -> None:
        """A submission ended as ``ended``: to a request waiting for it, and a batch's end."""
        if ended.token in self._awaited:
            self._awaited[ended.token] = ended
        if ended.batch and self._on_end is not None:  # only a batch's end needs telling
            await self._on_end(ended)

    async def _judged(
        self,
        mission_id: int,
        row: SubmissionRow,
        state: str,
        result: dict[str, Any] | None,
        mio: MissionIO,
    ) -> tuple[dict[str, Any], float]:
        """The outcome's columns of an ended mission and when it ended; the compile it made
        goes to the cache (or its claim is let go)."""
        compiling = self._compiling.pop(mission_id, None)
        keep: CompiledBox | None = None
        size = len(mio.collected.get(plan.OUT_DIR) or b"") + len(row.expected_output or b"")
        if isinstance(mio, Judge0IO) and mio.recorded is not None:
            size += sum(len(data) for data in mio.recorded.values())
        try:
            if size <= INLINE_JUDGE_BYTES:
                outcome, keep = self._judge(row, state, result, mio, compiling)
            else:
                args = (row, state, result, mio, compiling)
                outcome, keep = await asyncio.to_thread(self._judge, *args)
        except Exception as e:  # a bug here must still end the submission
            log.exception("judge0 submission %s cannot be judged", row.token)
            outcome = verdict.Outcome(wire.INTERNAL_ERROR, message=f"internal error: {e}")
        if compiling is not None and compiling.cached is None:
            if keep is not None:
                self.cache.put(compiling.key, keep)
            else:
                self.cache.abandon(compiling.key)
        return outcome.columns(), time.time()

    def _judge(
        self,
        row: SubmissionRow,
        state: str,
        result: dict[str, Any] | None,
        mio: MissionIO,
        compiling: _Compiling | None,
    ) -> tuple[verdict.Outcome, CompiledBox | None]:
        """The outcome of an ended mission, and the compile it made for the cache (off the
        loop: outputs may be megabytes)."""
        own_compile = compiling is not None and compiling.cached is None
        if state != "done" or result is None:
            why = "cancelled" if state == "cancelled" else "the judge could not run it"
            return verdict.Outcome(wire.INTERNAL_ERROR, message=why), None
        req = request_of(row)
        cap = 2 * (req.max_file_size * 1024 + 4096) * req.number_of_runs
        cap += 2 * plan.COMPILE_OUTPUT_KIB * 1024
        try:
            recorded = mio.recorded if isinstance(mio, Judge0IO) else None
            if recorded is not None:
                outputs = recorded
            else:
                outputs = read_outputs(mio.collected.get(plan.OUT_DIR), cap)
        except ArchiveRefused as e:
            outputs = {}
            log.warning("judge0 submission %s: outputs unreadable: %s", row.token, e)
        executes = result["prepare"]["execute"]
        compiles = len(executes) > req.number_of_runs
        cached = None
        if compiling is not None and compiling.cached is not None:
            c = compiling.cached
            cached = verdict.CompileResult(c.ok, c.output, c.timed_out)
        outcome = verdict.judge(
            executes,
            outputs,
            compiles=compiles,
            cached=cached,
            runs=req.number_of_runs,
            redirect=req.redirect_stderr_to_stdout,
            cpu_limit_s=req.cpu_time_limit,
            max_file_kib=req.max_file_size,
            expected=req.expected_output,
        )
        keep = None
        if own_compile and compiles:
            keep = self._compiled(executes[0]["meta"], outputs)
        return outcome, keep

    def _compiled(self, meta: dict[str, Any], outputs: dict[str, bytes]) -> CompiledBox | None:
        """This mission's compile for the cache (a failed compile too: a batch of one broken
        source then compiles once); None for a compile the judge could not run or pack."""
        done = verdict.compile_result(meta, outputs.get("compile"))
        if done is None:
            return None
        if done.ok:
            box = outputs.get("artifact.tar")
            if not box:
                return None
        else:
            box = self._empty_tar
        return CompiledBox(done.ok, done.output, box, done.timed_out)

    async def batch_ended(self, batch: str) -> tuple[str, list[SubmissionRow]] | None:
        """The callback URL and the submissions of a batch with a callback whose submissions
        have all ended, for exactly one caller (the others get None)."""
        info = await self.repo.batch(batch)
        if info is None:
            return None
        rows = await self.repo.batch_rows(batch)
        if len(rows) < info["size"] or any(r.finished_at is None for r in rows):
            return None
        if not await self.repo.claim_batch_call(batch):
            return None
        return str(info["callback_url"]), rows

    async def callback_of(
        self, mission: MissionRow, wait_s: float = 0.0
    ) -> tuple[str, bytes] | None:
        """Where to ``PUT`` what when a mission of the door ended: a submission's callback
        (Judge0's body) or a batch's (``{"submissions": [...]}``); None when it has none.
        Waits up to ``wait_s`` for a submission's outcome being stored."""
        payload = mission.mission.get("return", {}).get("payload", {})
        languages = self._languages()
        if payload.get(BATCH_CALLBACK):
            batch = str(payload.get("batch", ""))
            info = await self.repo.batch(batch)
            if info is None:
                return None
            rows = await self.repo.batch_rows(batch)
            return str(info["callback_url"]), batch_callback_body(rows, languages)
        url = payload.get("callback_url")
        token = payload.get("token")
        if not isinstance(url, str) or not isinstance(token, str):
            return None
        deadline = time.monotonic() + wait_s
        while (row := await self.repo.get(token)) is not None and row.finished_at is None:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)
        if row is None:
            return None
        return url, callback_body(row, languages)

    # -- reading ---------------------------------------------------------------------------------

    async def live_status(self, row: SubmissionRow) -> int:
        """A row's status: its outcome's, else 1 while its mission waits (an engine outage
        included) and 2 while it runs.

        A mission that ended without its outcome stored (the node died between the two) is
        told apart from one whose outcome is being stored by its age: after ``LOST_AFTER_S``
        the submission ends as an internal error saying so, rather than hanging a client that
        polls until the status leaves 1 and 2."""
        if row.finished_at is not None:
            return row.status_id
        if row.mission_id is None:
            return wire.IN_QUEUE
        mission = await self._mission_state(row.mission_id)
        if mission is None or mission.state == "queued":
            return wire.IN_QUEUE
        if mission.state in ("running", "cancelling"):
            return wire.PROCESSING
        if time.time() - mission.updated_at < LOST_AFTER_S:
            return wire.PROCESSING
        lost = verdict.Outcome(wire.INTERNAL_ERROR, message=LOST)
        await self.repo.finish(row.token, lost.columns(), time.time())
        stored = await self.repo.get(row.token)
        if stored is not None:
            row.__dict__.update(stored.__dict__)
        return row.status_id if stored is not None else wire.INTERNAL_ERROR


def render(
    row: SubmissionRow,
    status_id: int,
    fields: tuple[str, ...],
    *,
    base64_encoded: bool,
    languages: dict[int, Judge0Language],
) -> dict[str, Any]:
    """The Judge0 document of a submission with only ``fields``, in their order. Raises
    ``wire.NotUtf8`` when a text field asked for is not UTF-8 and base64 was not asked for."""
    out = row.outcome or {}
    params = row.params

    def value(name: str) -> Any:
        if name in wire.TEXT_FIELDS:
            return wire.text_field(getattr(row, name), base64_encoded=base64_encoded)
        if name == "message":
            message = out.get("message")
            if message is not None and base64_encoded:
                return wire.encode64(message.encode())
            return message
        if name == "status_id":
            return status_id
        if name == "status":
            return wire.status_doc(status_id)
        if name == "language":
            lang = languages.get(row.language_id)
            return {"id": row.language_id, "name": lang.name if lang else None}
        if name == "language_id":
            return row.language_id
        if name == "token":
            return row.token
        if name == "created_at":
            return wire.iso_date(row.created_at)
        if name == "finished_at":
            return wire.iso_date(row.finished_at)
        if name in ("time", "wall_time"):
            return wire.decimal(out.get(name))
        if name in ("memory", "exit_code", "exit_signal"):
            return out.get(name)
        if name == "additional_files":
            return wire.encode64(row.additional_files) if row.additional_files else None
        if name in wire.DECIMAL_FIELDS:
            return wire.decimal(params.get(name))
        return params.get(name)

    return {name: value(name) for name in fields}


def callback_body(row: SubmissionRow, languages: dict[int, Judge0Language]) -> bytes:
    """Judge0's callback body: the default fields, always base64 (as Judge0 sends it)."""
    doc = render(row, row.status_id, wire.DEFAULT_FIELDS, base64_encoded=True, languages=languages)
    return json.dumps(doc).encode()


def batch_callback_body(rows: list[SubmissionRow], languages: dict[int, Judge0Language]) -> bytes:
    """The batch callback's body (our extension): ``{"submissions": [...]}`` in batch order,
    each as its own callback would be."""
    docs = [
        render(r, r.status_id, wire.DEFAULT_FIELDS, base64_encoded=True, languages=languages)
        for r in rows
    ]
    return json.dumps({"submissions": docs}).encode()
