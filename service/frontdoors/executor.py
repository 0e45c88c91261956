"""The executor API: jobs made from uploaded zips, run as missions, polled.

A job is known by the hash of the blob it was created from. ``executor_config.json`` in the zip
says what to run; the zip's files go into the sandbox, the command's stdout and stderr are
redirected to ``job_stdout.txt`` and ``job_stderr.txt``, and after the run the sandbox's files are
zipped per result artifact into the blob store. Jobs are rows in SQLite; the mission behind a job
carries the job's hash in its payload, so a restart re-runs it from the blob.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import socket
import time
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.mission import MissionInvalid, normalise, parse_mission
from orchestrator.runner import MissionIO
from service.frontdoors.archives import ArchiveRefused, build_zip, read_zip, sandbox_files
from service.frontdoors.blobs import BlobStore, iso_time
from service.store import Database, JobRow, MissionRow, Store
from service.workers import MissionWorkers

KIND = "executor"
CONFIG_NAME = "executor_config.json"
STDOUT = "job_stdout.txt"
STDERR = "job_stderr.txt"
META = ".executor_meta.json"  # the execute's meta file; left out of the results
STATUSES = ("CREATED", "RUNNING", "SUCCESS", "FAILED_TO_EXECUTE", "CANCELED")
MAX_OUTPUT_CHARS = 1024 * 1024  # console output kept for /rest/executor/output
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
    # Accepted for compatibility with the original executor; they change nothing here.
    outputInterval: int | None = None
    outputSegmentSize: int | None = None
    # Our additions: the execute's limits (as in the mission API) and the image.
    time_limit: int | None = None
    memory_limit: int | None = None
    output_limit: int | None = None
    image: str | None = None


def parse_job(data: bytes) -> tuple[ExecutorConfig, dict[str, bytes]]:
    """The config and the files of a job zip; raises ``JobRefused``."""
    try:
        files = read_zip(data)
    except ArchiveRefused as e:
        raise JobRefused(str(e)) from None
    raw = files.get(CONFIG_NAME)
    if raw is None:
        raise JobRefused(f"the zip has no '{CONFIG_NAME}' at its top level")
    try:
        config = ExecutorConfig.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise JobRefused(f"{CONFIG_NAME}: {where}: {first['msg']}") from None
    names = [a.name for a in config.resultArtifacts]
    if len(set(names)) != len(names):
        raise JobRefused(f"{CONFIG_NAME}: resultArtifacts: two artifacts have the same name")
    return config, files


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


def matches(path: str, patterns: list[str]) -> bool:
    """Empty patterns match every file; a pattern without '/' also matches the base name."""
    if not patterns:
        return True
    base = path.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(path, p) or ("/" not in p and fnmatch.fnmatchcase(base, p))
        for p in patterns
    )


def job_doc(job: JobRow, *, with_id: bool = True) -> dict[str, Any]:
    """A job document of the executor API."""
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
    if with_id:
        doc["_id"] = job.doc_id
    if job.error:
        doc["error"] = job.error
    return doc


class ExecutorDoor:
    """Creates jobs and keeps their rows in step with their missions (a ``FrontDoor``)."""

    def __init__(self, store: Store, blobs: BlobStore, workers: MissionWorkers) -> None:
        self._store = store
        self._blobs = blobs
        self._workers = workers
        # Held while a job is created and its mission submitted, and by ``started``: a worker
        # never sees a mission whose job does not name it yet.
        self._lock = asyncio.Lock()
        self.worker_name = f"{socket.gethostname()}_{os.getpid()}"

    async def create(self, job_hash: str, token_hash: str) -> tuple[JobRow, bool]:
        """The job of blob ``job_hash``: the existing one unless it was cancelled, else a new
        one, queued. Returns (job, created). Raises ``LookupError`` (no such blob),
        ``JobRefused``, and ``QueueFull``/``ShuttingDown`` from the workers."""
        async with self._lock:
            existing = await self._store.call(Database.get_job, job_hash)
            if existing is not None and existing.status != "CANCELED":
                return existing, False
            got = await self._blobs.read(job_hash)
            if got is None:
                raise LookupError(job_hash)
            config, _ = await self._blobs.run(parse_job, got[1])
            mission = job_mission(job_hash, config)
            try:
                normalised = normalise(parse_mission(mission))
            except MissionInvalid as e:
                raise JobRefused(f"{CONFIG_NAME}: {e.message}") from None
            await self._store.call(Database.put_job, job_hash, uuid.uuid4().hex[:16])
            try:
                mission_id = await self._workers.submit(token_hash, mission, normalised, kind=KIND)
            except BaseException:
                await self._store.call(Database.delete_job, job_hash)
                raise
            await self._store.call(Database.update_job, job_hash, {"mission_id": mission_id})
            job = await self._store.call(Database.get_job, job_hash)
            assert job is not None
            return job, True

    async def _update(self, job_hash: str, **changes: Any) -> None:
        await self._store.call(Database.update_job, job_hash, changes)

    async def cancel(self, job: JobRow) -> JobRow:
        if job.mission_id is not None and job.status in ("CREATED", "RUNNING"):
            await self._workers.cancel(job.mission_id)
        now = await self._store.call(Database.get_job, job.hash)
        return now or job

    async def _job_of(self, mission_id: int, row: MissionRow | None = None) -> JobRow | None:
        if row is None:
            row = await self._store.call(Database.get_mission, mission_id)
        if row is None:
            return None
        job_hash = row.normalised["return"]["payload"].get("job")
        job = await self._store.call(Database.get_job, str(job_hash))
        return job if job is not None and job.mission_id == mission_id else None

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        async with self._lock:
            job = await self._job_of(row.id, row)
        if job is None:
            return None
        await self._update(
            job.hash,
            status="RUNNING",
            start_time=time.time(),
            worker=self.worker_name,
        )
        got = await self._blobs.read(job.hash)
        if got is None:
            return None
        try:
            _, files = await self._blobs.run(parse_job, got[1])
        except JobRefused:
            return None
        return MissionIO(inputs=files, collect=[""])

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        job = await self._job_of(mission_id)
        if job is None:
            return
        now = time.time()
        if state == "cancelled":
            await self._update(job.hash, status="CANCELED", finish_time=now)
            return
        if result is None:
            await self._update(
                job.hash,
                status="FAILED_TO_EXECUTE",
                finish_time=now,
                error="the job could not be run (its zip is gone or no longer valid)",
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
        got = await self._blobs.read(job.hash)
        config = (await self._blobs.run(parse_job, got[1]))[0] if got is not None else None
        hashes: dict[str, str] = {}
        for artifact in config.resultArtifacts if config is not None else []:
            chosen = [
                (p, c) for p, c in sorted(files.items()) if matches(p, artifact.resultPatterns)
            ]
            archive = await self._blobs.run(build_zip, chosen)
            blob = await self._blobs.put(f"{artifact.name}.zip", archive, "application/zip")
            hashes[artifact.name] = blob.hash
        ok = meta["status"] == "" and not error
        message = error or meta.get("message", "")
        await self._update(
            job.hash,
            status="SUCCESS" if ok else "FAILED_TO_EXECUTE",
            finish_time=now,
            result_hashes=hashes,
            output=files[STDOUT][:MAX_OUTPUT_CHARS].decode(errors="replace"),
            error="" if ok else f"{meta['status']}: {message}".strip(": "),
        )


def output_doc(job: JobRow) -> list[dict[str, Any]]:
    """The console output so far (the final stdout once the job is done), as the original
    executor's output segments."""
    if not job.output:
        return []
    return [{"hash": job.hash, "outputNumber": 0, "output": job.output, "_id": job.doc_id}]
