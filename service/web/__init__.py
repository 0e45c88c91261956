"""The playground page: ``GET /`` and its static files under ``/playground/``.

The page is a client of the public API like any other (missions, events, languages, health,
metrics): nothing here computes anything for it. The files are read once at start and served
from memory with a strict Content-Security-Policy, so the page can make no request that leaves
the server (no CDN, no remote fonts), whatever a future edit to it tries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
PAGE_PATH = "/"
ASSET_PREFIX = "/playground"

_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}

# Everything from this server, nothing inline, nothing framed: a leak of the token through an
# injected script or a third-party request is impossible by construction, not by care.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(folder: Path = STATIC) -> dict[str, Asset]:
    """Every file of ``folder`` (flat) by name, with its type and a content hash as ETag.

    Raises ``ValueError`` for a file of a type the page does not serve (a stray file must not
    be published by accident)."""
    assets: dict[str, Asset] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        ctype = _TYPES.get(path.suffix)
        if ctype is None:
            raise ValueError(f"{path.name}: not a type the playground serves")
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        assets[path.name] = Asset(body, ctype, etag)
    return assets


ASSETS = web.AppKey("playground_assets", dict)


def _answer(request: web.Request, asset: Asset, cache: str) -> web.Response:
    headers = {**HEADERS, "ETag": asset.etag, "Cache-Control": cache}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers
    )


async def page(request: web.Request) -> web.Response:
    """The playground (``index.html``); revalidated at each load so a new version shows."""
    return _answer(request, request.app[ASSETS]["index.html"], "no-cache")


async def asset(request: web.Request) -> web.Response:
    """One of the page's scripts or styles, or 404."""
    found = request.app[ASSETS].get(request.match_info["file"])
    if found is None:
        raise web.HTTPNotFound()
    return _answer(request, found, "no-cache")


def setup_web_routes(app: web.Application) -> None:
    app[ASSETS] = load_assets()
    app.router.add_get(PAGE_PATH, page)
    app.router.add_get(ASSET_PREFIX + "/{file}", asset)


def openapi_paths() -> dict[str, Any]:
    """The page's routes for ``/api/openapi.json``."""
    return {
        PAGE_PATH: {
            "get": {
                "tags": ["server"],
                "operationId": "playground",
                "summary": "The playground page (runs code through this API; docs/playground.md)",
                "security": [],
                "responses": {"200": {"description": "An HTML page."}},
            }
        },
        ASSET_PREFIX + "/{file}": {
            "get": {
                "tags": ["server"],
                "operationId": "playgroundAsset",
                "summary": "The playground's scripts and styles",
                "security": [],
                "parameters": [
                    {
                        "name": "file",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "A file of the page.",
                    }
                ],
                "responses": {
                    "200": {"description": "The file."},
                    "304": {"description": "Not modified (ETag)."},
                    "404": {"description": "No such file."},
                },
            }
        },
    }


__all__ = ["openapi_paths", "setup_web_routes"]
