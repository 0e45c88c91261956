"""Typed keys of the application's state; each resource is set by the cleanup context that owns
it (``service.app``) and read by the handlers (``service.api.missions``)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from orchestrator.sandbox.pool import SandboxPool
from orchestrator.sandbox.sandbox import SandboxRuntime
from service.languages import Languages
from service.pipeline.offload import Offload
from service.pipeline.running import BlobReader
from service.pipeline.wiring import MissionWorkers
from service.settings import Settings
from service.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
RUNTIME = web.AppKey("runtime", SandboxRuntime)
POOL = web.AppKey("pool", SandboxPool)
HTTP = web.AppKey("http", aiohttp.ClientSession)
WORKERS = web.AppKey("workers", MissionWorkers)
LANGUAGES = web.AppKey("languages", Languages)
# Worker processes for validating and decoding large requests (``service.pipeline.offload``).
OFFLOAD = web.AppKey("offload", Offload)
# Readers of ``blob:`` file URLs per token, when a door serves them (the WebGME door's blobs).
BLOB_URLS: web.AppKey[Callable[[str], BlobReader]] = web.AppKey("blob_urls")

__all__ = [
    "BLOB_URLS",
    "HTTP",
    "LANGUAGES",
    "OFFLOAD",
    "POOL",
    "RUNTIME",
    "SETTINGS",
    "STORE",
    "WORKERS",
]
