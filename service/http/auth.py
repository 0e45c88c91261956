"""Who is asking: the judge's Bearer token (or the body's ``token`` field), checked against the
settings and the store."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from service.http.errors import ApiError
from service.keys import SETTINGS, STORE
from service.settings import Settings
from service.store import Store, hash_token


async def token_hash_of(settings: Settings, store: Store, token: str) -> str | None:
    """The hash of ``token`` when it is one of the settings' or an active one of the store;
    None otherwise."""
    digest = hash_token(token)
    allowed = False
    for configured in settings.token_hashes:
        allowed |= hmac.compare_digest(configured, digest)
    if allowed or await store.tokens.token_active(digest):
        return digest
    return None


async def authenticate(request: web.Request, fields: dict[str, Any] | None = None) -> str:
    """Return the hash of a valid token from a Bearer header or the body; raises 401."""
    token: Any = ""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = credentials.strip()
    if not token and fields is not None:
        token = fields.get("token", "")
    if not isinstance(token, str):
        raise ApiError(
            401,
            "unauthorized",
            "the token must be a string",
            "token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token:
        raise ApiError(
            401,
            "unauthorized",
            "a token is required (field 'token' or 'Authorization: Bearer')",
            "token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # config_dict: the keys of the root app, from its routes and from a door's sub-app alike.
    digest = await token_hash_of(request.config_dict[SETTINGS], request.config_dict[STORE], token)
    if digest is not None:
        return digest
    raise ApiError(
        401,
        "unauthorized",
        "unknown or revoked token",
        "token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def front_token(request: web.Request) -> str:
    """The hash of a valid token from Bearer, ``X-Auth-Token`` or ``?token=``; raises 401."""
    token = request.headers.get("X-Auth-Token") or request.query.get("token")
    if not token and not request.headers.get("Authorization"):
        raise ApiError(
            401,
            "unauthorized",
            "a token is required ('Authorization: Bearer', 'X-Auth-Token' or '?token=')",
            "token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await authenticate(request, {"token": token} if token else None)
