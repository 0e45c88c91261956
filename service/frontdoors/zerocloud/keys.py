"""Typed key of the ZeroCloud door's hooks in the application's state."""

from __future__ import annotations

from aiohttp import web

from service.frontdoors.zerocloud.execdoor import ExecDoor

EXEC = web.AppKey("exec", ExecDoor)

__all__ = ["EXEC"]
