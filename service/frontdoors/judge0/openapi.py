"""The Judge0 door's routes in OpenAPI 3.1 (merged into ``/api/openapi.json``); the prose
reference is docs/judge0.md."""

from __future__ import annotations

from typing import Any

from service.frontdoors.judge0 import wire
from service.frontdoors.judge0.request import PERMITTED

PREFIX = "/judge0"
TAG = {"name": "judge0", "description": "Judge0 CE 1.13.1 (docs/judge0.md)."}
SECURITY: list[dict[str, list[str]]] = [
    {"judge0Token": []},
    {"judge0TokenQuery": []},
    {"bearer": []},
]
SECURITY_SCHEMES = {
    "judge0Token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
    "judge0TokenQuery": {"type": "apiKey", "in": "query", "name": "X-Auth-Token"},
}

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_FIELD_ERRORS = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "description": "Judge0's (Rails') field errors: field -> messages.",
}
_SUBMISSION = {
    "type": "object",
    "description": "The fields asked for (`fields`), in Judge0's order.",
    "properties": {name: {} for name in wire.AVAILABLE_FIELDS},
}
_REQUEST = {
    "type": "object",
    "properties": {name: {} for name in PERMITTED},
    "required": ["language_id"],
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


BASE64 = _query("base64_encoded", "`true`: text fields base64 (Ruby's encode64) both ways.")
FIELDS = _query("fields", "Comma-separated fields, or `*` for all.")
UNAUTHORIZED = {"description": "No token, or an unknown one (empty body)."}
NOT_FOUND = _json("No such submission for this token.", _ERROR)
BAD = _json('`{"error": ...}`: bad `fields`, page, batch size, or not UTF-8.', _ERROR)
BUSY = _json("`queue is full` or shutting down, with `Retry-After`.", _ERROR)


def _op(op_id: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "tags": ["judge0"],
        "operationId": op_id,
        "summary": summary,
        "security": SECURITY,
        "responses": {**responses, "401": UNAUTHORIZED},
        **more,
    }


def paths() -> dict[str, Any]:
    """Every route the door mounts, under ``/judge0``."""
    info = _json("A document.", {})
    routes: dict[str, Any] = {
        "/submissions": {
            "post": _op(
                "judge0CreateSubmission",
                "Create a submission (`wait=true`: answer when it ended)",
                {
                    "201": _json("`{token}`, or the submission with `wait=true`.", _SUBMISSION),
                    "400": BAD,
                    "422": _json("Invalid fields.", _FIELD_ERRORS),
                    "503": BUSY,
                    "429": _json("Rate limited, with `Retry-After`.", _ERROR),
                },
                parameters=[BASE64, FIELDS, _query("wait", "`true`: wait for the end.")],
                requestBody={
                    "content": {
                        "application/json": {"schema": _REQUEST},
                        "application/x-www-form-urlencoded": {"schema": _REQUEST},
                    }
                },
            ),
            "get": _op(
                "judge0ListSubmissions",
                "The caller's submissions, newest first, paginated",
                {"200": _json("`{submissions, meta}`.", {"type": "object"}), "400": BAD},
                parameters=[
                    BASE64,
                    FIELDS,
                    _query("page", "From 1."),
                    _query("per_page", "Default 20."),
                ],
            ),
        },
        "/submissions/batch": {
            "post": _op(
                "judge0CreateBatch",
                "Create 1..20 submissions (and a batch `callback_url`, an extension)",
                {
                    "201": _json("Per submission `{token}` or its errors.", {"type": "array"}),
                    "400": BAD,
                    "422": _json("Every submission invalid.", {"type": "array"}),
                    "503": BUSY,
                },
                parameters=[BASE64],
                requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
            ),
            "get": _op(
                "judge0GetBatch",
                "Submissions by token, in order (`null`: not the caller's or unknown)",
                {"200": _json("`{submissions}`.", {"type": "object"}), "400": BAD},
                parameters=[BASE64, FIELDS, _query("tokens", "Comma-separated tokens.")],
            ),
        },
        "/submissions/{token}": {
            "parameters": [_path("token", "The submission's token.")],
            "get": _op(
                "judge0GetSubmission",
                "One submission",
                {"200": _json("The submission.", _SUBMISSION), "400": BAD, "404": NOT_FOUND},
                parameters=[BASE64, FIELDS],
            ),
            "delete": _op(
                "judge0DeleteSubmission",
                "Delete a finished submission (returned)",
                {
                    "200": _json("The submission, base64.", _SUBMISSION),
                    "400": BAD,
                    "404": NOT_FOUND,
                },
                parameters=[FIELDS],
            ),
        },
        "/languages": {"get": _op("judge0Languages", "Active languages", {"200": info})},
        "/languages/all": {"get": _op("judge0AllLanguages", "All languages", {"200": info})},
        "/languages/{id}": {
            "parameters": [_path("id", "A Judge0 language id.")],
            "get": _op("judge0Language", "One language", {"200": info, "404": NOT_FOUND}),
        },
        "/statuses": {"get": _op("judge0Statuses", "The 14 statuses", {"200": info})},
        "/about": {"get": _op("judge0About", "Version (1.13.1) and links", {"200": info})},
        "/version": {
            "get": _op(
                "judge0Version", "`1.13.1` (plain text)", {"200": {"description": "Plain text."}}
            )
        },
        "/config_info": {
            "get": _op("judge0ConfigInfo", "Judge0's 39 configuration keys", {"200": info})
        },
        "/system_info": {
            "get": _op("judge0SystemInfo", "The host's CPU and memory", {"200": info})
        },
        "/workers": {"get": _op("judge0Workers", "The queue and the worker slots", {"200": info})},
    }
    return {PREFIX + path: item for path, item in routes.items()}
