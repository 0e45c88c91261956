"""Typed keys of the application's state; each resource is set by the cleanup context that owns
it (``service.app``) and read by the handlers (``service.routes``)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from orchestrator.sandbox import SandboxRuntime
from service.settings import Settings
from service.store import Store
from service.workers import MissionWorkers

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
RUNTIME = web.AppKey("runtime", SandboxRuntime)
HTTP = web.AppKey("http", aiohttp.ClientSession)
WORKERS = web.AppKey("workers", MissionWorkers)

__all__ = ["HTTP", "RUNTIME", "SETTINGS", "STORE", "WORKERS"]
