"""The Piston door's routes in the server's OpenAPI description (``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

_MESSAGE = {
    "description": "Piston's error: `{message}`",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"message": {"type": "string"}},
                "required": ["message"],
            }
        }
    },
}

_STAGE = {
    "type": "object",
    "properties": {
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "output": {"type": "string", "description": "stdout, then stderr"},
        "code": {"type": ["integer", "null"]},
        "signal": {"type": ["string", "null"]},
        "message": {"type": ["string", "null"]},
        "status": {"enum": ["RE", "SG", "TO", "OL", "EL", "XX", None]},
        "cpu_time": {"type": "integer", "description": "ms"},
        "wall_time": {"type": "integer", "description": "ms"},
        "memory": {"type": "integer", "description": "bytes"},
    },
}

_FILE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "content": {"type": "string"},
        "encoding": {"enum": ["utf8", "base64", "hex"]},
    },
    "required": ["content"],
}

_EXECUTE = {
    "type": "object",
    "properties": {
        "language": {"type": "string"},
        "version": {"type": "string", "description": "a semver range: `*`, `3.x`, `3.11.2`"},
        "files": {"type": "array", "items": _FILE},
        "stdin": {"type": "string"},
        "args": {"type": "array", "items": {"type": "string"}},
        **{
            f"{stage}_{limit}": {"type": "number"}
            for stage in ("compile", "run")
            for limit in ("timeout", "cpu_time", "memory_limit")
        },
    },
    "required": ["language", "version", "files"],
}

_RUNTIME = {
    "type": "object",
    "properties": {
        "language": {"type": "string"},
        "version": {"type": "string"},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "runtime": {"type": "string"},
    },
}

_PACKAGE = {
    "type": "object",
    "properties": {
        "language": {"type": "string"},
        "language_version": {"type": "string"},
        "installed": {"type": "boolean"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def paths(prefix: str) -> dict[str, Any]:
    """OpenAPI path items of the door under ``prefix`` (``/api/v2``); the same routes also
    answer under ``{prefix}/piston`` and with a trailing slash."""
    tag = ["piston"]
    errors = {str(code): _MESSAGE for code in (400, 401, 413, 429, 503)}
    return {
        f"{prefix}/runtimes": {
            "get": {
                "tags": tag,
                "summary": "Piston's runtimes: the languages of the judge's images",
                "operationId": "pistonRuntimes",
                "responses": {"200": _json({"type": "array", "items": _RUNTIME}, "runtimes")},
            }
        },
        f"{prefix}/execute": {
            "post": {
                "tags": tag,
                "summary": "Run a program (Piston v2); any Content-Type, JSON body",
                "operationId": "pistonExecute",
                "requestBody": {"content": {"application/json": {"schema": _EXECUTE}}},
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "language": {"type": "string"},
                                "version": {"type": "string"},
                                "run": _STAGE,
                                "compile": _STAGE,
                            },
                        },
                        "the stages' results",
                    ),
                    **errors,
                },
            }
        },
        f"{prefix}/packages": {
            "get": {
                "tags": tag,
                "summary": "Piston's packages: the languages the images provide",
                "operationId": "pistonPackages",
                "responses": {"200": _json({"type": "array", "items": _PACKAGE}, "packages")},
            },
            "post": {
                "tags": tag,
                "summary": "Not here: an operator builds an image instead (501, says how)",
                "operationId": "pistonInstall",
                "responses": {"501": _MESSAGE, "401": _MESSAGE},
            },
            "delete": {
                "tags": tag,
                "summary": "Not here: an operator removes an image instead (501)",
                "operationId": "pistonUninstall",
                "responses": {"501": _MESSAGE, "401": _MESSAGE},
            },
        },
    }


__all__ = ["paths"]
