"""Typed keys of the application's state; each resource is set by the cleanup context that owns
it (``service.app``) and read by the handlers (``service.routes``)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from orchestrator.pool import SandboxPool
from orchestrator.sandbox import SandboxRuntime
from service.frontdoors.blobs import BlobStore
from service.frontdoors.executor import ExecutorDoor
from service.frontdoors.retention import RetentionSweeper
from service.frontdoors.zerovm import ExecDoor
from service.languages import Languages
from service.settings import Settings
from service.store import Store
from service.workers import MissionWorkers

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
RUNTIME = web.AppKey("runtime", SandboxRuntime)
POOL = web.AppKey("pool", SandboxPool)
HTTP = web.AppKey("http", aiohttp.ClientSession)
WORKERS = web.AppKey("workers", MissionWorkers)
BLOBS = web.AppKey("blobs", BlobStore)
EXECUTOR = web.AppKey("executor", ExecutorDoor)
EXEC = web.AppKey("exec", ExecDoor)
RETENTION = web.AppKey("retention", RetentionSweeper)
LANGUAGES = web.AppKey("languages", Languages)

__all__ = [
    "BLOBS",
    "EXEC",
    "EXECUTOR",
    "HTTP",
    "LANGUAGES",
    "POOL",
    "RETENTION",
    "RUNTIME",
    "SETTINGS",
    "STORE",
    "WORKERS",
]
