"""The playground in a real browser: Debian's chromium driven by Playwright for Python,
against the judge started from this worktree as a process (``python -m service``).

Every test gets a fresh page that fails the test on a console error, an uncaught exception or
a request to anywhere but the judge (each is recorded, and refused before it leaves).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, Judge, Watch, running_judge


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def judge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Judge]:
    """The judge as a process of its own for the whole browser session (see ``running_judge``)."""
    with running_judge(tmp_path_factory.mktemp("judge")) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, never a browser download (the network is closed).

    Playwright's sync API runs an event loop of its own while it is started: it lives for one
    module only, so that pytest-asyncio's loops in the other test modules never meet it (which
    is why these tests do not use pytest-playwright's session-wide fixtures).
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, judge: Judge) -> Iterator[Page]:
    """A fresh page in a fresh context (its own sessionStorage), desktop size."""
    context = browser.new_context(base_url=judge.url, viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def playground(page: Page, judge: Judge, watch: Watch) -> Iterator[Page]:
    """The page at ``/``, not yet given a token. At the end: no console error, no uncaught
    exception, no request that was not to the judge."""
    origin = judge.url.rstrip("/")

    def guard(route: Route, request: Request) -> None:
        if request.url == origin or request.url.startswith(origin + "/"):
            route.continue_()
            return
        watch.outside.append(request.url)
        route.abort()

    page.on("console", watch.console)
    page.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: _failed(r, watch))
    page.context.route("**/*", guard)
    page.set_default_timeout(30_000)
    page.goto(judge.url)
    yield page
    assert watch.outside == [], f"requests left the server: {watch.outside}"
    assert watch.errors == [], "\n".join(watch.errors)


def _failed(request: Request, watch: Watch) -> None:
    # A stream the page aborts itself (leaving a mission's events) is not an error.
    if request.failure and "ERR_ABORTED" in request.failure:
        return
    watch.errors.append(f"request failed: {request.url} {request.failure}")
