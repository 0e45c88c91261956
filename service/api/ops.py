"""Operations routes: health, the installed sandbox images and the container runtimes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from orchestrator.errors import JudgeError
from service.api.metrics import metrics
from service.http.auth import authenticate
from service.keys import LANGUAGES, POOL, RUNTIME, SETTINGS, STORE, WORKERS

SUPERVISOR_LABEL = "judge.supervisor"


def _iso(epoch_s: float) -> str:
    """An epoch time as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _engine_check(app: web.Application) -> dict[str, dict[str, Any]]:
    """The engine's and the default image's checks. The two engine calls run side by side:
    while the engine is busy each takes tens of milliseconds, and /healthz waits for the slower
    one rather than for both in turn."""
    settings = app[SETTINGS]
    gate = app[WORKERS].engine
    version, labels = await asyncio.gather(
        app[RUNTIME].adapter.version(),
        # Through the runtime's cache: what it holds is what submissions are checked against
        # while the engine does not answer.
        app[RUNTIME].image_labels(settings.default_image, max_age_s=0),
        return_exceptions=True,
    )
    for outcome in (version, labels):
        if isinstance(outcome, BaseException) and not isinstance(outcome, JudgeError):
            raise outcome
    failure = version if isinstance(version, JudgeError) else labels
    if isinstance(failure, JudgeError):
        engine: dict[str, Any] = {"ok": False, "error": str(failure)}
        # Since when (as the workers saw it): they claim nothing meanwhile.
        if gate is not None:
            gate.mark_down(str(failure))
            since = gate.down_since
            if since is not None:
                engine["down_since"] = _iso(since)
                engine["down_s"] = round(gate.outage_s(), 1)
        return {"engine": engine, "default_image": {"ok": False, "name": settings.default_image}}
    assert isinstance(version, dict)
    assert not isinstance(labels, BaseException)
    if gate is not None:
        gate.mark_up()
    return {
        "engine": {"ok": True, "version": version.get("Version")},
        "default_image": {
            "ok": labels is not None and SUPERVISOR_LABEL in labels,
            "name": settings.default_image,
        },
    }


async def _database_check(app: web.Application) -> dict[str, Any]:
    store = app[STORE]
    # A probe, not the counts: one row read, whatever the number of missions kept.
    if not await store.ping():
        return {"ok": False, "error": "the database does not answer"}
    return {"ok": True, "engine": store.engine}


async def healthz(request: web.Request) -> web.Response:
    """Whether this node can take and run missions. The engine and the database are asked side
    by side, so the answer takes as long as the slower of them, not their sum."""
    settings = request.app[SETTINGS]
    engine_checks, database = await asyncio.gather(
        _engine_check(request.app), _database_check(request.app)
    )
    checks: dict[str, dict[str, Any]] = {**engine_checks, "database": database}
    checks["intake"] = {"ok": request.app[WORKERS].accepting}
    # Which node answered: its sandboxes (on its own engine) carry this owner label.
    checks["node"] = {"ok": True, "owner": settings.sandbox_owner}
    ok = all(c["ok"] for c in checks.values())
    # The pool is information, not a check: an empty pool only makes sandboxes slower to get.
    pool = request.app[POOL].snapshot()
    body = {"ok": ok, "checks": checks, "pool": pool}
    return web.json_response(body, status=200 if ok else 503)


async def list_images(request: web.Request) -> web.Response:
    """The sandbox images installed on the engine (label ``judge.supervisor``), from their labels
    only: one cheap engine call, no container. Untagged (dangling) images are left out."""
    await authenticate(request)
    docs = await request.app[RUNTIME].adapter.list_images(SUPERVISOR_LABEL)
    images: list[dict[str, Any]] = []
    for doc in docs:
        tags = sorted(t for t in doc.get("RepoTags") or [] if t and t != "<none>:<none>")
        if not tags:
            continue
        labels = (doc.get("Config") or {}).get("Labels") or {}
        images.append(
            {
                "name": tags[0],
                "tags": tags,
                "id": doc.get("Id"),
                "created": doc.get("Created"),
                "size": doc.get("Size"),
                "image": labels.get("judge.image"),
                "toolchain": labels.get("judge.toolchain"),
                "default": request.app[SETTINGS].default_image in tags
                or f"{request.app[SETTINGS].default_image}:latest" in tags,
            }
        )
    images.sort(key=lambda i: i["name"])
    return web.json_response({"images": images})


async def list_languages(request: web.Request) -> web.Response:
    """The language registry (``service.languages``), after looking at the engine's images
    again when that was more than a second ago."""
    await authenticate(request)
    registry = await request.app[LANGUAGES].refresh(max_age_s=1.0)
    return web.json_response({"languages": [lang.describe() for lang in registry.all()]})


async def list_runtimes(request: web.Request) -> web.Response:
    """The container runtimes a mission may name: those ``JUDGE_RUNTIMES`` allows, each saying
    whether the engine offers it (one cheap engine call, no container)."""
    await authenticate(request)
    offered = set(await request.app[RUNTIME].adapter.runtimes())
    allowed = request.app[SETTINGS].runtimes
    return web.json_response(
        {
            "runtimes": [{"name": name, "available": name in offered} for name in allowed],
            "engine": sorted(offered),
        }
    )


def setup_ops_routes(app: web.Application) -> None:
    app.router.add_get("/api/images", list_images)
    app.router.add_get("/api/languages", list_languages)
    app.router.add_get("/api/runtimes", list_runtimes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


__all__ = ["SUPERVISOR_LABEL", "setup_ops_routes"]
