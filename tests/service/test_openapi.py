"""``/api/openapi.json`` describes the app exactly; ``/docs`` is served from the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from service.app import create_app, openapi_document
from service.settings import Settings
from tests.seed000 import hello_mission, seed_echo
from tests.service.conftest import StartJudge
from tests.service.support import REPO

METHODS = {"get", "post", "put", "delete", "patch"}


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route; HEAD is aiohttp's automatic twin of GET."""
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        assert path, f"a route without a path: {route}"
        routes.add((route.method.lower(), path))
    return routes


def described_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


def mission_validator() -> jsonschema.Draft202012Validator:
    doc = openapi_document()
    schema = {**doc["components"]["schemas"]["Mission"], "components": doc["components"]}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_route_is_described_and_every_description_is_a_route(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    assert described_routes(openapi_document()) == app_routes(app)


def test_path_parameters_are_declared() -> None:
    for path, item in openapi_document()["paths"].items():
        names = {p.split("}")[0] for p in path.split("{")[1:]}
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = item.get("parameters", []) + op.get("parameters", [])
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert declared == names, (method, path)


def test_the_document_is_valid_openapi_3_1_and_refs_resolve() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # the OpenAPI 3.1 meta-schema, and every $ref resolves
    text = json.dumps(doc)
    schemas = doc["components"]["schemas"]
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    # The mission schema is pydantic's: the limits' bounds come from the model.
    execute = schemas["Execute"]["properties"]
    assert {k: v for k, v in execute["memory_limit"].items() if k != "description"} == {
        "default": 65536,
        "maximum": 2097152,
        "minimum": 1,
        "title": "Memory Limit",
        "type": "integer",
    }
    assert "return" not in schemas["Mission"].get("required", [])


def test_the_reference_missions_validate_against_the_schema() -> None:
    validator = mission_validator()
    validator.validate(hello_mission("http://127.0.0.1:9/cb"))
    validator.validate(seed_echo("http://127.0.0.1:9/cb"))  # the echo is a mission too
    examples = sorted((REPO / "examples").glob("*.json"))
    selftests = sorted((REPO / "images").glob("*/selftest.json"))
    assert len(examples) >= 5
    assert selftests
    for path in [*examples, *selftests]:
        validator.validate(json.loads(path.read_text()))


@pytest.mark.parametrize(
    "bad",
    [
        {"prepare": {"execute": [{"command": "echo"}]}},
        {"prepare": {"execute": [{"command": ["x"], "memory_limit": 0}]}},
        {"return": {"payload": {}}},
        {"surprise": 1},
    ],
)
def test_the_schema_refuses_what_the_server_refuses(bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        mission_validator().validate(bad)


async def test_the_server_serves_the_document_and_the_page(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    async with api.session.get(f"{api.url}/api/openapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.json() == json.loads(json.dumps(openapi_document()))
    async with api.session.get(f"{api.url}/docs") as resp:
        assert resp.status == 200
        page = await resp.text()
    assert "/api/openapi.json" not in page  # loaded by init.js, not inline script
    assets = [part.split('"')[0] for part in page.split('="/docs/')[1:]]
    assert "swagger-ui-bundle.js" in assets
    assert "init.js" in assets
    for asset in assets:
        async with api.session.get(f"{api.url}/docs/{asset}") as resp:
            assert resp.status == 200, asset
            assert len(await resp.read()) > 0
    async with api.session.get(f"{api.url}/docs/init.js") as resp:
        assert "/api/openapi.json" in await resp.text()
    for missing in ("index.html", "..%2fpyproject.toml", "swagger-ui.js.map"):
        async with api.session.get(f"{api.url}/docs/{missing}") as resp:
            assert resp.status == 404, missing


def test_every_field_of_the_mission_schema_has_words() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for model in (
        "Mission",
        "Return",
        "Stage",
        "Task",
        "Tasks",
        "Execute",
        "Record",
        "Scope",
        "Compare",
    ):
        for name, prop in schemas[model]["properties"].items():
            assert prop.get("description"), f"{model}.{name}"
