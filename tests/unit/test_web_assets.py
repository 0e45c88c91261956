"""The playground's files as the server sends them (service/web): no engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from service.web import CSP, load_assets, setup_web_routes


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> TestClient:
    app = web.Application()
    setup_web_routes(app)
    return await aiohttp_client(app)


async def test_the_page_forbids_every_origin_but_its_own(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "default-src 'none'" in CSP
    assert "connect-src 'self'" in CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    page = await resp.text()
    # Every script and style the page loads is one of the files served next to it.
    for name in ("playground.css", "playground.js", "favicon.svg"):
        assert f"/playground/{name}" in page
    assert "http://" not in page
    assert "https://" not in page


async def test_files_are_revalidated_by_etag(client: TestClient) -> None:
    first = await client.get("/playground/playground.js")
    assert first.status == 200
    assert first.content_type == "text/javascript"
    again = await client.get(
        "/playground/playground.js", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304
    assert await again.read() == b""


@pytest.mark.parametrize("name", ["nope.js", "..%2f__init__.py", "index.html.bak"])
async def test_only_the_pages_own_files_are_served(client: TestClient, name: str) -> None:
    resp = await client.get(f"/playground/{name}")
    assert resp.status == 404


def test_a_stray_file_of_another_type_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "notes.txt").write_text("secret")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        load_assets(tmp_path)


def test_no_file_of_the_page_asks_for_another_origin() -> None:
    for name, asset in load_assets().items():
        # (An SVG names its XML namespace with a URL; nothing fetches it.)
        text = asset.body.decode().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in text, name
        assert "https://" not in text, name
        assert "@import" not in text, name
