"""``GET /api/openapi.json`` (OpenAPI 3.1) and ``GET /docs`` (Swagger UI, served from here).

The mission's schema is pydantic's JSON schema of ``orchestrator.mission.Mission``, not a
second description: a field added to the model shows up here. The rest (routes, answers) is
described in this module; a test checks that it names every route of the app and nothing else.
Swagger UI's files come from the ``swagger-ui-bundle-v2`` package: no CDN, nothing vendored.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from orchestrator.mission import Mission
from service import web as playground
from service.api.fielddocs import FIELD_DOCS
from service.http.openapi import ENGINE, NOT_FOUND, RATE_HEADERS, UNAUTHORIZED, DoorApi
from service.http.openapi import REF as _REF
from service.http.openapi import error as _error
from service.http.openapi import json_content as _json
from service.http.openapi import path_param as _path_param
from service.http.openapi import ref as _ref
from service.store import MISSION_STATES

SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One Server-Sent Event: its `event` name, its `id` (for `Last-Event-ID`) "
    "and its `data`, a JSON object written as text.",
    "properties": {
        "event": {"type": "string", "enum": ["state", "execute", "done"]},
        "id": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "A JSON object (the event's fields) as one line of text.",
        },
    },
    "required": ["event", "id", "data"],
}
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/docs"
# The assets the page loads; nothing else of the bundle is served.
DOCS_ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "index.css",
        "favicon-32x32.png",
        "favicon-16x16.png",
    }
)

DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>judge API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="stylesheet" href="/docs/index.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

# Inline scripts would need a weaker Content-Security-Policy; this one is served as a file.
DOCS_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""


_ARGV = {"type": "array", "items": {"type": "string"}}
LANGUAGE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "version", "aliases", "image", "source_file", "compile", "run"],
    "properties": {
        "id": {"type": "string", "example": "python3"},
        "name": {"type": "string", "example": "Python"},
        "version": {"type": "string", "example": "3.11.2"},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "image": {"type": "string", "example": "judge/python3"},
        "source_file": {"type": "string", "example": "script.py"},
        "compile": {"type": ["array", "null"], "items": {"type": "string"}},
        "run": _ARGV,
        "compile_limits": {"type": "object", "additionalProperties": {"type": "integer"}},
        "piston": {
            "type": ["object", "null"],
            "properties": {
                "language": {"type": "string"},
                "runtime": {"type": ["string", "null"]},
            },
        },
        "judge0": {
            "type": ["object", "null"],
            "properties": {
                "ids": {"type": "array", "items": {"type": "integer"}},
                "name": {"type": "string"},
            },
        },
    },
}


def _schemas() -> dict[str, Any]:
    mission = Mission.model_json_schema(by_alias=True, ref_template=_REF)
    schemas: dict[str, Any] = mission.pop("$defs", {})
    schemas["Mission"] = mission
    for model, fields in FIELD_DOCS.items():
        for name, text in fields.items():
            schemas[model]["properties"][name]["description"] = text
    problem = {
        "type": "object",
        "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
        "required": ["path", "message"],
    }
    schemas["MissionList"] = {
        "type": "object",
        "properties": {
            "missions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "state": {"enum": list(MISSION_STATES)},
                        "kind": {"type": "string", "description": "`mission` or a front door's"},
                        "runs": {"type": "integer"},
                        "created_at": {"type": "number", "description": "Unix time, seconds."},
                        "updated_at": {"type": "number", "description": "Unix time, seconds."},
                        "image": {"type": ["string", "null"]},
                        "language": {"type": "string"},
                        "error": {"type": "string"},
                    },
                    "required": ["id", "state", "kind", "runs", "created_at", "updated_at"],
                },
            },
            "total": {"type": "integer", "description": "The caller's missions in all."},
        },
        "required": ["missions", "total"],
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable, machine-readable: `invalid_mission`, "
                        "`malformed`, `unauthorized`, `not_found`, `too_large`, "
                        "`unsupported_media_type`, `queue_full`, `rate_limited`, "
                        "`shutting_down`, `engine_unavailable`, `default_image_missing`, "
                        "`engine_refused`, `image_not_found`, `invalid_wait`, `internal`, ...",
                    },
                    "message": {"type": "string"},
                    "path": {"type": ["string", "null"], "description": "The offending field."},
                    "errors": {
                        "type": "array",
                        "items": problem,
                        "description": "Every problem of an invalid mission.",
                    },
                },
                "required": ["code", "message", "path"],
            }
        },
        "required": ["error"],
    }
    schemas["Submission"] = {
        "type": "object",
        "properties": {
            "token": {"type": "string", "description": "Or `Authorization: Bearer`."},
            "mission": {
                "description": "The mission, as an object or as its JSON text (in forms).",
                "oneOf": [_ref("Mission"), {"type": "string"}],
            },
        },
        "required": ["mission"],
        "additionalProperties": False,
    }
    schemas["Accepted"] = {
        "type": "object",
        "properties": {
            "msg": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "payload": {"type": "object", "description": "`return.payload`, echoed."},
                },
                "required": ["id", "payload"],
            }
        },
        "required": ["msg"],
    }
    schemas["MissionState"] = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "state": {"enum": list(MISSION_STATES)},
            "runs": {
                "type": "integer",
                "description": "Times it was started (re-runs after a restart).",
            },
            "mission": {"type": "object", "description": "The mission with every default."},
            "mission_result": {
                "type": ["object", "null"],
                "description": "`prepare`, `task[]`, `final`: files and executes (meta, record).",
            },
            "callback": {
                "type": "object",
                "properties": {
                    "state": {"enum": ["none", "waiting", "pending", "delivered", "failed"]},
                    "attempts": {"type": "integer"},
                    "error": {"type": "string"},
                },
            },
            "error": {"type": "string", "description": "Why a `failed` mission has no result."},
            "msg": {"description": "Only in the answer to a submission with `?wait`."},
        },
        "required": ["id", "state", "runs", "mission", "mission_result", "callback"],
    }
    return schemas


def _mission_routes() -> dict[str, Any]:
    submit = {
        "tags": ["missions"],
        "summary": "Submit a mission",
        "description": "Stores and queues the mission. Without `?wait` it answers at once. With "
        "`?wait=S` (0 to 60 seconds) it answers 200 with the mission's whole state (as `GET "
        "/api/missions/{id}`) plus `msg` when the mission ends within S seconds, else 202 with "
        "`msg`. A mission with `return` gets its callback either way.",
        "security": [{"bearer": []}, {}],
        "parameters": [
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "schema": {"type": "number", "minimum": 0, "maximum": 60},
                "description": "Seconds to wait for the mission to end.",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ref("Submission")},
                "application/x-www-form-urlencoded": {"schema": _ref("Submission")},
                "multipart/form-data": {"schema": _ref("Submission")},
            },
        },
        "responses": {
            "200": {
                **_json("Queued (or ended, with `?wait`).", _ref("Accepted")),
                "headers": RATE_HEADERS,
            },
            "202": {
                **_json("Still running after `?wait` seconds.", _ref("Accepted")),
                "headers": RATE_HEADERS,
            },
            "400": _error(
                "`invalid_mission` (every problem in `errors`), `malformed`, `invalid_wait`."
            ),
            "401": UNAUTHORIZED,
            "413": _error("The body is larger than `JUDGE_MAX_BODY_BYTES`."),
            "415": _error("Not JSON, a form or multipart."),
            "429": _error("`queue_full` or `rate_limited`; with `Retry-After`."),
            "503": ENGINE,
        },
    }
    mission_id = _path_param("id", "The mission's id.", {"type": "integer"})
    return {
        "/api/missions/": {"post": {**submit, "operationId": "submitMission"}},
        "/api/missions": {
            "post": {**submit, "operationId": "submitMissionNoSlash"},
            "get": {
                "tags": ["missions"],
                "operationId": "listMissions",
                "summary": "The caller's own missions, newest first",
                "description": "Every kind (the mission API's and the front doors'), at most "
                "`limit` after skipping `offset`, and `total`, how many there are. Each entry "
                "says what a list shows; `GET /api/missions/{id}` has the mission and its result.",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                        "description": "How many missions at most.",
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                        "description": "How many of the newest to skip (paging).",
                    },
                ],
                "responses": {
                    "200": _json("The missions.", _ref("MissionList")),
                    "400": _error("`invalid_limit` or `invalid_offset`."),
                    "401": UNAUTHORIZED,
                },
            },
        },
        "/api/missions/{id}": {
            "parameters": [mission_id],
            "get": {
                "tags": ["missions"],
                "operationId": "getMission",
                "summary": "A mission's state and result (poll this)",
                "responses": {
                    "200": _json("The mission.", _ref("MissionState")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            },
            "delete": {
                "tags": ["missions"],
                "operationId": "cancelMission",
                "summary": "Cancel a mission",
                "description": "A queued mission ends `cancelled` at once (200); a running one "
                "is stopped by its worker (202, state `cancelling`); a finished one is left "
                "as it is (200, its state).",
                "responses": {
                    "200": _json("Final.", {"type": "object"}),
                    "202": _json("Being stopped.", {"type": "object"}),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            },
        },
        "/api/missions/{id}/events": {
            "parameters": [mission_id],
            "get": {
                "tags": ["missions"],
                "operationId": "missionEvents",
                "summary": "Live progress as Server-Sent Events",
                "description": "Events `state`, `execute` (one per finished execute) and a "
                "last `done` carrying the result. Each has an `id`; reconnecting with "
                "`Last-Event-ID` resumes after it.",
                "parameters": [
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "An event stream; the schema is that of one event.",
                        "content": {"text/event-stream": {"schema": SSE_EVENT}},
                    },
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            },
        },
        "/api/images": {
            "get": {
                "tags": ["server"],
                "operationId": "listImages",
                "summary": "The sandbox images installed on the engine",
                "responses": {
                    "200": _json('`{"images": [...]}`', {"type": "object"}),
                    "401": UNAUTHORIZED,
                    "503": ENGINE,
                },
            }
        },
        "/api/languages": {
            "get": {
                "tags": ["server"],
                "operationId": "listLanguages",
                "summary": "The languages the engine's images declare (a mission may name one)",
                "description": "Each language: `id`, `name`, `version` (semver), `aliases`, "
                "`image`, `source_file`, `compile` (argv template or null), `run`, "
                "`compile_limits`, `piston` ({language, runtime} or null), `judge0` ({ids, name} "
                "or null). In templates `{file}` is the entry file's name, `{stem}` that name "
                "without its extension. Looks at the engine's images first (at most once a "
                "second), so an image built a moment ago is listed.",
                "responses": {
                    "200": _json(
                        '`{"languages": [{"id": "python3", "version": "3.11.2", ...}]}`',
                        {
                            "type": "object",
                            "required": ["languages"],
                            "properties": {"languages": {"type": "array", "items": LANGUAGE}},
                        },
                    ),
                    "401": UNAUTHORIZED,
                },
            }
        },
        "/api/runtimes": {
            "get": {
                "tags": ["server"],
                "operationId": "listRuntimes",
                "summary": "The container runtimes a mission may name, and which the engine offers",
                "responses": {
                    "200": _json(
                        '`{"runtimes": [{"name": "runc", "available": true}], "engine": ["runc"]}`',
                        {"type": "object"},
                    ),
                    "401": UNAUTHORIZED,
                    "503": ENGINE,
                },
            }
        },
        "/healthz": {
            "get": {
                "tags": ["server"],
                "operationId": "health",
                "summary": "Engine, default image, database, intake",
                "security": [],
                "responses": {
                    "200": _json("Healthy.", {"type": "object"}),
                    "503": _json("A check failed.", {"type": "object"}),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["server"],
                "operationId": "metrics",
                "summary": "Prometheus metrics (judge and process)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "tags": ["server"],
                "operationId": "openapi",
                "summary": "This description",
                "security": [],
                "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"})},
            }
        },
        DOCS_PATH: {
            "get": {
                "tags": ["server"],
                "operationId": "docs",
                "summary": "This description, browsable (Swagger UI)",
                "security": [],
                "responses": {"200": {"description": "An HTML page."}},
            }
        },
        DOCS_PATH + "/{file}": {
            "get": {
                "tags": ["server"],
                "operationId": "docsAsset",
                "summary": "The page's scripts and styles",
                "security": [],
                "parameters": [_path_param("file", "An asset of the page.")],
                "responses": {"200": {"description": "The file."}, "404": NOT_FOUND},
            }
        },
    }


def _and(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def openapi_document(doors: Sequence[DoorApi] = ()) -> dict[str, Any]:
    """The whole description: the mission API's, then each door's part in order."""
    labels = [d.label for d in doors if d.label]
    described = f", {_and(labels)} front door{'s' if len(labels) > 1 else ''}" if labels else ""
    schemes: dict[str, Any] = {"bearer": {"type": "http", "scheme": "bearer"}}
    paths = _mission_routes()
    tags = [{"name": "missions", "description": "The mission API."}]
    for door in doors:
        schemes.update(door.security_schemes)
        paths.update(door.paths)
        tags.extend(door.tags)
    paths.update(playground.openapi_paths())  # the page (service.web), after the doors
    tags.append({"name": "server", "description": "Health, metrics, images, this description."})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "judge",
            "version": "0.1.0",
            "description": "Runs untrusted code in Docker sandboxes: missions (callback, "
            f"polling, waiting, events){described}. The prose reference is docs/api.md in the "
            "repository.",
        },
        "tags": tags,
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": _schemas(), "securitySchemes": schemes},
    }


DOCUMENT = web.AppKey("openapi_document", bytes)


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html")


async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["file"]
    if name == "init.js":
        return web.Response(text=DOCS_INIT, content_type="text/javascript")
    if name not in DOCS_ASSETS:
        raise web.HTTPNotFound()
    path = Path(swagger_ui_path) / name
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.FileResponse(path, headers={"Content-Type": ctype, "Cache-Control": "max-age=3600"})


def setup_openapi_routes(app: web.Application, document: dict[str, Any]) -> None:
    """Serve ``document`` (``openapi_document`` of the app's doors) and its Swagger UI page."""
    app[DOCUMENT] = json.dumps(document, indent=1).encode()
    app.router.add_get(OPENAPI_PATH, openapi_json)
    app.router.add_get(DOCS_PATH, docs_page)
    app.router.add_get(DOCS_PATH + "/{file}", docs_asset)


__all__ = ["openapi_document", "setup_openapi_routes"]
