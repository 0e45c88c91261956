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


_NOT_FOUND = {"404": _MESSAGE}
_METHODS = ("get", "post", "put", "delete", "patch")


def _routes() -> dict[str, Any]:
    """The door's path items relative to a base (``/runtimes``...), each operation without
    its operationId (the caller makes them unique per base)."""
    errors = {str(code): _MESSAGE for code in (400, 401, 413, 429, 503)}
    routes: dict[str, Any] = {
        "/runtimes": {
            "get": {
                "summary": "Piston's runtimes: the languages of the judge's images",
                "responses": {"200": _json({"type": "array", "items": _RUNTIME}, "runtimes")},
            }
        },
        "/execute": {
            "post": {
                "summary": "Run a program (Piston v2); a JSON body, whatever its Content-Type",
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
        "/packages": {
            "get": {
                "summary": "Piston's packages: the languages the images provide",
                "responses": {"200": _json({"type": "array", "items": _PACKAGE}, "packages")},
            },
            "post": {
                "summary": "Not here: an operator builds an image instead (405 says how)",
                "responses": {"405": _MESSAGE, "401": _MESSAGE, "429": _MESSAGE},
            },
            "delete": {
                "summary": "Not here: an operator removes an image instead (405)",
                "responses": {"405": _MESSAGE, "401": _MESSAGE, "429": _MESSAGE},
            },
        },
    }
    routes["/connect"] = {
        "get": {
            "summary": "Piston's interactive WebSocket (init, runtime, stage, data, exit, "
            "error; close codes 4000-4005, 4999): see docs/piston.md",
            "responses": {
                "101": {"description": "switching to the WebSocket protocol"},
                "400": _MESSAGE,  # not a WebSocket handshake
            },
        }
    }
    return routes


def paths(prefix: str) -> dict[str, Any]:
    """OpenAPI path items of every route the door mounts under ``prefix`` (``/api/v2``):
    each route under ``prefix`` and ``prefix/piston``, with and without a trailing slash, and
    Piston's 404 for any other path below ``prefix``."""
    out: dict[str, Any] = {}
    for base, base_id in ((prefix, ""), (f"{prefix}/piston", "Piston")):
        for slash, slash_id in (("", ""), ("/", "Slash")):
            for path, item in _routes().items():
                described = {}
                for method, operation in item.items():
                    name = path.strip("/").capitalize()
                    described[method] = {
                        **operation,
                        "tags": ["piston"],
                        "operationId": f"piston{method.capitalize()}{name}{base_id}{slash_id}",
                        "security": [{"bearer": []}, {}],
                    }
                out[f"{base}{path}{slash}"] = described
    out[f"{prefix}/{{tail}}"] = {
        "parameters": [
            {"name": "tail", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        **{
            method: {
                "tags": ["piston"],
                "summary": "Any other path below the Piston prefix: Piston's 404",
                "operationId": f"pistonNotFound{method.capitalize()}",
                "responses": _NOT_FOUND,
            }
            for method in _METHODS
        },
    }
    return out


__all__ = ["paths"]
