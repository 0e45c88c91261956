"""The executor API (WebGME's executor): jobs made from job definitions, run as missions.

A job is known by the hash of the blob it was created from: a zip (the classic way) or a complex
artifact (WebGME's ``Artifact.save``). ``executor_config.json`` in it says what to run; its files
go into the sandbox, the command's stdout and stderr are redirected to ``job_stdout.txt`` and
``job_stderr.txt``. When ``outputInterval``/``outputSegmentSize`` ask for it, the output of the
running command is read from the sandbox and stored as numbered segments. After the run, the
sandbox's files become file blobs and each result artifact a complex artifact of soft links to
them, as WebGME's worker makes them. Jobs are rows of this door's tables (``repo``), one per
token and hash; the mission behind a job carries the job's hash in its payload and the token as
its owner, so a restart re-runs it from the blob.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import logging
import os
import re
import socket
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import JudgeError, TransferRefused
from orchestrator.mission import MissionInvalid, normalise, parse_mission
from orchestrator.mission.result import MissionState
from orchestrator.run.runner import MissionIO
from orchestrator.sandbox.tar import single_file
from service.frontdoors.archives import sandbox_files
from service.frontdoors.door import Core
from service.frontdoors.webgme.blobs import (
    COMPLEX,
    SOFT_LINK,
    BlobRefused,
    BlobStore,
    BlobTooLarge,
    QuotaExceeded,
    iso_time,
)
from service.frontdoors.webgme.repo import WebgmeRepo
from service.frontdoors.webgme.tables import JobRow
from service.store import MissionRow

log = logging.getLogger(__name__)

KIND = "executor"
CONFIG_NAME = "executor_config.json"
STDOUT = "job_stdout.txt"
STDERR = "job_stderr.txt"
META = ".executor_meta.json"  # the execute's meta file; left out of the results
STATUSES = ("CREATED", "RUNNING", "SUCCESS", "FAILED_TO_EXECUTE", "CANCELED")
# WebGME's worker has more ways to fail; a listing by one of them is valid here and empty.
WEBGME_STATUSES = (
    *STATUSES,
    "FAILED_TO_GET_SOURCE_METADATA",
    "FAILED_SOURCE_COULD_NOT_BE_OBTAINED",
    "FAILED_CREATING_SOURCE_ZIP",
    "FAILED_UNZIP",
    "FAILED_EXECUTOR_CONFIG",
    "FAILED_TO_ARCHIVE_FILE",
    "FAILED_TO_SAVE_JOINT_ARTIFACT",
    "FAILED_TO_ADD_OBJECT_HASHES",
    "FAILED_TO_SAVE_ARTIFACT",
)
MAX_OUTPUT_CHARS = 1024 * 1024  # console output kept for /rest/executor/output
MIN_POLL_MS = 250  # reading a running job's output costs an engine round trip: not more often
DEFAULT_POLL_MS = 1000  # when only outputSegmentSize is given
# Front-door missions have no callback; the mission format still wants an address.
NO_CALLBACK = "http://executor.invalid/"


class JobRefused(ValueError):
    """The zip cannot make a job; the message says why (the API answers 400)."""


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    resultPatterns: list[str] = Field(default_factory=list)


class ExecutorConfig(BaseModel):
    """``executor_config.json``: the executor's fields, plus optional limits in mission units."""

    model_config = ConfigDict(extra="forbid")
    cmd: Annotated[str, Field(min_length=1)]
    args: list[str] = Field(default_factory=list)
    resultArtifacts: list[_Artifact] = Field(default_factory=list)
    # Output while the job runs (WebGME): at most every outputInterval ms, or once
    # outputSegmentSize lines are there; both absent or negative: output only at the end.
    outputInterval: int | None = None
    outputSegmentSize: int | None = None
    # Our additions: the execute's limits (as in the mission API) and the image.
    time_limit: int | None = None
    memory_limit: int | None = None
    output_limit: int | None = None
    image: str | None = None


def parse_job(files: dict[str, bytes]) -> ExecutorConfig:
    """The config of a job definition's files; raises ``JobRefused``."""
    raw = files.get(CONFIG_NAME)
    if raw is None:
        raise JobRefused(f"the job definition has no '{CONFIG_NAME}' at its top level")
    try:
        config = ExecutorConfig.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise JobRefused(f"{CONFIG_NAME}: {where}: {first['msg']}") from None
    names = [a.name for a in config.resultArtifacts]
    if len(set(names)) != len(names):
        raise JobRefused(f"{CONFIG_NAME}: resultArtifacts: two artifacts have the same name")
    return config


def job_mission(job_hash: str, config: ExecutorConfig) -> dict[str, Any]:
    """The mission that runs a job: one execute, its output redirected to the job's files."""
    execute: dict[str, Any] = {
        "command": [config.cmd, *config.args],
        "stdout": STDOUT,
        "stderr": STDERR,
        "meta": META,
        "record": {"enable": False},
    }
    for limit in ("time_limit", "memory_limit", "output_limit"):
        if (value := getattr(config, limit)) is not None:
            execute[limit] = value
    mission: dict[str, Any] = {
        "return": {"url": NO_CALLBACK, "payload": {"job": job_hash}},
        "prepare": {"execute": [execute]},
    }
    if config.image is not None:
        mission["image"] = config.image
    return mission


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A result pattern as WebGME's worker reads it (minimatch): ``*`` and ``?`` stay within a
    path component, ``**`` spans any number of them (none included), ``[...]`` is a class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def matches(path: str, patterns: list[str]) -> bool:
    """Empty patterns match every file; a pattern without '/' also matches the base name (so
    ``*.txt`` takes ``out/a.txt``, as the reference walkthrough has it)."""
    if not patterns:
        return True
    base = path.rsplit("/", 1)[-1]
    return any(
        _glob(p).fullmatch(path) is not None
        or ("/" not in p and _glob(p).fullmatch(base) is not None)
        for p in patterns
    )


def job_doc(job: JobRow, *, with_id: bool = True) -> dict[str, Any]:
    """A job document of the executor API; ``outputNumber`` (WebGME) once output was streamed."""
    doc: dict[str, Any] = {
        "hash": job.hash,
        "resultHashes": job.result_hashes if job.result_hashes is not None else [],
        "resultSuperSet": None,
        "userId": [],
        "status": job.status,
        "createTime": iso_time(job.create_time),
        "startTime": iso_time(job.start_time),
        "finishTime": iso_time(job.finish_time),
        "worker": job.worker,
        "labels": [],
    }
    if job.output_number is not None:
        doc["outputNumber"] = job.output_number
    if with_id:
        doc["_id"] = job.doc_id
    if job.error:
        doc["error"] = job.error
    return doc


def output_segment(job_hash: str, number: int, output: str) -> dict[str, Any]:
    """One output segment in WebGME's shape (``OutputInfo``)."""
    return {
        "hash": job_hash,
        "outputNumber": number,
        "output": output,
        "_id": f"{job_hash}+{number}",
    }


def _single_file(tar: bytes) -> bytes:
    return single_file(tar)


@dataclass
class OutputStream:
    """The output of one running job, cut into segments as WebGME's worker cuts them: when
    ``interval_ms`` passed since the last segment (and there is new output) or when
    ``segment_lines`` new lines are there. Reads the sandbox's stdout file, at most
    ``MAX_OUTPUT_CHARS`` of it."""

    token_hash: str
    job_hash: str
    interval_ms: int
    segment_lines: int
    sent: int = 0  # bytes of stdout already in segments
    number: int = 0  # the next segment's number
    last: float = field(default_factory=time.monotonic)
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )
    capped: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def poll_s(self) -> float:
        period = self.interval_ms if self.interval_ms > 0 else DEFAULT_POLL_MS
        return max(period, MIN_POLL_MS) / 1000

    def due(self, new: bytes) -> bool:
        if not new:
            return False
        if self.segment_lines > 0 and new.count(b"\n") >= self.segment_lines:
            return True
        return self.interval_ms > 0 and (time.monotonic() - self.last) * 1000 >= self.interval_ms

    def take(self, data: bytes, *, final: bool = False) -> str | None:
        """The next segment's text from the whole stdout so far, None when none is due."""
        new = data[self.sent : MAX_OUTPUT_CHARS]
        if not (final and new) and not self.due(new):
            return None
        self.sent += len(new)
        self.last = time.monotonic()
        return self.decoder.decode(new, final=final)


class ExecutorDoor:
    """Creates jobs and keeps their rows in step with their missions (the WebGME door's
    hooks)."""

    def __init__(self, repo: WebgmeRepo, blobs: BlobStore, core: Core) -> None:
        self._repo = repo
        self._blobs = blobs
        self._core = core
        # Held while a job is created and its mission submitted, and by ``started``: a worker
        # never sees a mission whose job does not name it yet.
        self._lock = asyncio.Lock()
        self.worker_name = f"{socket.gethostname()}_{os.getpid()}"
        self._streams: dict[int, tuple[OutputStream, asyncio.Task[None]]] = {}

    async def close(self) -> None:
        """Stop reading the output of jobs still running (at shutdown, after the workers)."""
        streams = list(self._streams.values())
        self._streams.clear()
        for _, task in streams:
            task.cancel()
        await asyncio.gather(*(task for _, task in streams), return_exceptions=True)

    async def _files(self, token_hash: str, job_hash: str) -> dict[str, bytes] | None:
        try:
            return await self._blobs.job_files(token_hash, job_hash)
        except (BlobRefused, BlobTooLarge) as e:
            raise JobRefused(str(e)) from None

    async def create(self, job_hash: str, token_hash: str) -> tuple[JobRow, bool]:
        """The token's job of blob ``job_hash``: the existing one unless it was cancelled, else
        a new one, queued. Returns (job, created). Raises ``LookupError`` (the token sees no
        such blob), ``JobRefused``, and ``QueueFull``/``ShuttingDown`` from the workers."""
        async with self._lock:
            existing = await self._repo.get_job(token_hash, job_hash)
            if existing is not None and existing.status != "CANCELED":
                return existing, False
            files = await self._files(token_hash, job_hash)
            if files is None:
                raise LookupError(job_hash)
            # A config may list arguments by the thousand: parsed off the event loop.
            config = await asyncio.to_thread(parse_job, files)
            await self._repo.touch_blob(job_hash, token_hash)
            mission = job_mission(job_hash, config)
            try:
                normalised = await asyncio.to_thread(lambda: normalise(parse_mission(mission)))
            except MissionInvalid as e:
                raise JobRefused(f"{CONFIG_NAME}: {e.message}") from None
            doc_id = uuid.uuid4().hex[:16]
            # The job and its mission are stored in one transaction: a crash never leaves a
            # CREATED job without a mission (which create would then return forever).
            await self._core.submit(
                token_hash,
                mission,
                kind=KIND,
                normalised=normalised,
                rows=self._repo.job_rows(token_hash, job_hash, doc_id),
            )
            job = await self._repo.get_job(token_hash, job_hash)
            assert job is not None
            return job, True

    async def _update(self, token_hash: str, job_hash: str, **changes: Any) -> None:
        await self._repo.update_job(token_hash, job_hash, changes)

    async def cancel(self, job: JobRow) -> JobRow:
        if job.mission_id is not None and job.status in ("CREATED", "RUNNING"):
            await self._core.cancel(job.mission_id)
        now = await self._repo.get_job(job.token_hash, job.hash)
        return now or job

    async def _job_of(self, mission_id: int, row: MissionRow | None = None) -> JobRow | None:
        if row is None:
            row = await self._core.mission(mission_id)
        if row is None:
            return None
        job_hash = row.normalised["return"]["payload"].get("job")
        job = await self._repo.get_job(row.token_hash, str(job_hash))
        return job if job is not None and job.mission_id == mission_id else None

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        async with self._lock:
            job = await self._job_of(row.id, row)
        if job is None:
            return None
        await self._repo.clear_outputs(job.token_hash, job.hash)
        await self._update(
            job.token_hash,
            job.hash,
            status="RUNNING",
            start_time=time.time(),
            worker=self.worker_name,
        )
        try:
            files = await self._files(job.token_hash, job.hash)
            config = parse_job(files) if files is not None else None
        except JobRefused:
            return None
        if files is None or config is None:
            return None
        interval = config.outputInterval or -1
        lines = config.outputSegmentSize or -1
        # Streamed output is read while the command runs: through the engine, from a volume.
        mission_io = MissionIO(inputs=files, collect=[""], live_reads=interval > 0 or lines > 0)
        if interval > 0 or lines > 0:
            stream = OutputStream(job.token_hash, job.hash, interval, lines)
            task = asyncio.create_task(self._pump(stream, mission_io), name=f"output-{row.id}")
            self._streams[row.id] = (stream, task)
        return mission_io

    async def _post(self, stream: OutputStream, text: str) -> None:
        number = stream.number
        stream.number += 1
        await self._repo.add_output(stream.token_hash, stream.job_hash, number, text)

    async def _pump(self, stream: OutputStream, mission_io: MissionIO) -> None:
        """Read the running command's stdout from the sandbox and store due segments, until
        ``stream.stop`` is set (the mission ended) or more than we keep was written."""
        while not stream.capped:
            try:  # a polling period, ended early by the mission's end
                await asyncio.wait_for(stream.stop.wait(), stream.poll_s)
                return
            except TimeoutError:
                pass
            box = mission_io.sandbox
            if box is None:
                continue
            try:
                tar = await box.get_archive(STDOUT, max_bytes=MAX_OUTPUT_CHARS)
                data = await self._blobs.run(_single_file, tar)
            except TransferRefused:
                stream.capped = True  # more than we keep: the rest comes with the result
                continue
            except (JudgeError, ValueError, tarfile.TarError):
                continue  # not written yet, or the sandbox is going away
            text = stream.take(data)
            if text is not None:
                await self._post(stream, text)

    async def _end_stream(self, mission_id: int, stdout: bytes | None) -> None:
        got = self._streams.pop(mission_id, None)
        if got is None:
            return
        stream, task = got
        # Let a segment being stored land before the last one is numbered after it.
        stream.stop.set()
        await asyncio.gather(task, return_exceptions=True)
        if stdout is not None:
            text = stream.take(stdout, final=True)
            if text:
                await self._post(stream, text)

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        job = await self._job_of(mission_id)
        if job is None:
            await self._end_stream(mission_id, None)
            return
        token, now = job.token_hash, time.time()
        if state == MissionState.CANCELLED or result is None:
            await self._end_stream(mission_id, None)
            if state == MissionState.CANCELLED:
                await self._update(token, job.hash, status="CANCELED", finish_time=now)
            else:
                await self._update(
                    token,
                    job.hash,
                    status="FAILED_TO_EXECUTE",
                    finish_time=now,
                    error="the job could not be run (its definition is gone or no longer valid)",
                )
            return
        meta = result["prepare"]["execute"][0]["meta"]
        files: dict[str, bytes] = {}
        error = ""
        if "" in io.collected:
            files = await self._blobs.run(sandbox_files, io.collected[""])
        else:
            error = io.collect_errors.get("", "the sandbox could not be read")
        files.pop(META, None)
        files.setdefault(STDOUT, b"")
        files.setdefault(STDERR, b"")
        await self._end_stream(mission_id, files[STDOUT])
        try:
            source = await self._files(token, job.hash)
            config = parse_job(source) if source is not None else None
        except JobRefused:
            config = None
        hashes: dict[str, str] = {}
        if config is not None:
            try:
                hashes = await self._save_results(token, config, files)
            except QuotaExceeded as e:
                error = f"the results were not kept: {e}"
        ok = meta["status"] == "" and not error
        message = error or meta.get("message", "")
        await self._update(
            token,
            job.hash,
            status="SUCCESS" if ok else "FAILED_TO_EXECUTE",
            finish_time=now,
            result_hashes=hashes,
            output=files[STDOUT][:MAX_OUTPUT_CHARS].decode(errors="replace"),
            error="" if ok else f"{meta['status']}: {message}".strip(": "),
        )

    async def _save_results(
        self, token_hash: str, config: ExecutorConfig, files: dict[str, bytes]
    ) -> dict[str, str]:
        """Each result artifact as WebGME's worker saves it: every chosen file a file blob
        (named by its base name), the artifact a complex blob ``<name>.zip`` of soft links to
        them. Returns artifact name -> hash. Raises ``QuotaExceeded`` before storing anything
        when the files would not fit."""
        chosen = {
            artifact.name: sorted(p for p in files if matches(p, artifact.resultPatterns))
            for artifact in config.resultArtifacts
        }
        needed = {p for paths in chosen.values() for p in paths}
        # Files by size, artifacts by their documents (an upper bound of each entry's JSON).
        total = sum(len(files[p]) for p in needed) + sum(
            300 + sum(2 * len(p.encode()) + 80 for p in paths) for paths in chosen.values()
        )
        hashes: dict[str, str] = {}
        async with self._blobs.quota_lock(token_hash):
            await self._blobs.check_quota(token_hash, total)
            links: dict[str, tuple[str, int]] = {}
            for path in sorted(needed):
                blob = await self._blobs.put_file(
                    token_hash, path.rsplit("/", 1)[-1], files[path], charge=False
                )
                links[path] = (blob.hash, blob.size)
            for artifact in config.resultArtifacts:
                paths = chosen[artifact.name]
                doc = {
                    "name": f"{artifact.name}.zip",
                    "size": sum(links[p][1] for p in paths),
                    "mime": "application/zip",
                    "isPublic": False,
                    "tags": [],
                    "content": {
                        p: {"content": links[p][0], "contentType": SOFT_LINK} for p in paths
                    },
                    "contentType": COMPLEX,
                }
                row = await self._blobs.put_artifact(token_hash, doc, charge=False)
                hashes[artifact.name] = row.hash
        return hashes

    async def outputs(
        self, job: JobRow, start: int | None, end: int | None
    ) -> list[dict[str, Any]]:
        """Segments ``start`` <= n < ``end`` of a job's output (WebGME's ``getOutput``). A job
        that streamed nothing has its whole stdout as segment 0 once it is finished."""
        if job.output_number is not None:
            got = await self._repo.get_outputs(job.token_hash, job.hash, start, end)
            return [output_segment(job.hash, n, text) for n, text in got]
        if not job.output or (start is not None and start > 0) or (end is not None and end < 1):
            return []
        return [output_segment(job.hash, 0, job.output)]
