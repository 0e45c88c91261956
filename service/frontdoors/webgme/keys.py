"""Typed keys of the WebGME door's resources in the application's state."""

from __future__ import annotations

from aiohttp import web

from service.frontdoors.webgme.blobs import BlobStore
from service.frontdoors.webgme.executor import ExecutorDoor
from service.frontdoors.webgme.repo import WebgmeRepo
from service.frontdoors.webgme.retention import RetentionSweeper

BLOBS = web.AppKey("blobs", BlobStore)
EXECUTOR = web.AppKey("executor", ExecutorDoor)
RETENTION = web.AppKey("retention", RetentionSweeper)
REPO = web.AppKey("webgme_repo", WebgmeRepo)

__all__ = ["BLOBS", "EXECUTOR", "REPO", "RETENTION"]
