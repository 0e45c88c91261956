"""OpenAPI building blocks shared by the mission API's description and the doors' (each door
describes its own paths; ``service.api.openapi`` puts the document together)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class DoorApi:
    """A front door's part of ``/api/openapi.json``: its paths (after the mission API's), its
    tags (between ``missions`` and ``server``), its security schemes, and ``label``, its name in
    the document's description."""

    paths: dict[str, Any]
    tags: list[dict[str, Any]] = field(default_factory=list)
    security_schemes: dict[str, Any] = field(default_factory=dict)
    label: str = ""


def error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def json_content(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(model: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=model)}


def path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> Any:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


UNAUTHORIZED = error("No token, or an unknown or revoked one (`WWW-Authenticate: Bearer`).")
NOT_FOUND = error("No such mission for this token (another token's mission is not found).")
ENGINE = error(
    "`engine_unavailable` (the Docker engine does not answer), `default_image_missing` or "
    "`shutting_down`; with `Retry-After`."
)
RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("RateLimit-Limit", "Submissions per minute per token (only with `JUDGE_RATE_LIMIT`)."),
        ("RateLimit-Remaining", "Submissions left in this minute."),
        ("RateLimit-Reset", "Seconds until the minute ends."),
    )
}
FRONT_AUTH: list[dict[str, list[str]]] = [{"bearer": []}, {"xAuthToken": []}, {"tokenQuery": []}]

# The doors' token schemes (``service.http.auth.front_token``): Bearer, X-Auth-Token, ?token=.
FRONT_SECURITY_SCHEMES: dict[str, Any] = {
    "xAuthToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
    "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
}


def front_op(op_id: str, summary: str, responses: dict[str, Any], tag: str, **more: Any) -> Any:
    """An operation of a door authenticated by ``front_token`` (401 when it refuses)."""
    return {
        "tags": [tag],
        "operationId": op_id,
        "summary": summary,
        "security": FRONT_AUTH,
        "responses": {**responses, "401": UNAUTHORIZED},
        **more,
    }
