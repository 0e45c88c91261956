"""Operations routes: health, the installed sandbox images and the container runtimes."""

from __future__ import annotations

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


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    checks: dict[str, dict[str, Any]] = {}
    adapter = request.app[RUNTIME].adapter
    try:
        version = await adapter.version()
        checks["engine"] = {"ok": True, "version": version.get("Version")}
        # Through the runtime's cache: what it holds is what submissions are checked against
        # while the engine does not answer.
        labels = await request.app[RUNTIME].image_labels(settings.default_image, max_age_s=0)
        checks["default_image"] = {
            "ok": labels is not None and SUPERVISOR_LABEL in labels,
            "name": settings.default_image,
        }
        if (gate := request.app[WORKERS].engine) is not None:
            gate.mark_up()
    except JudgeError as e:
        checks["engine"] = {"ok": False, "error": str(e)}
        checks["default_image"] = {"ok": False, "name": settings.default_image}
        # Since when (as the workers saw it): they claim nothing meanwhile.
        if (gate := request.app[WORKERS].engine) is not None:
            gate.mark_down(str(e))
            since = gate.down_since
            if since is not None:
                checks["engine"]["down_since"] = _iso(since)
                checks["engine"]["down_s"] = round(gate.outage_s(), 1)
    try:
        store = request.app[STORE]
        await store.missions.counts()
        checks["database"] = {"ok": True, "engine": store.engine}
    except Exception as e:
        checks["database"] = {"ok": False, "error": str(e)}
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
