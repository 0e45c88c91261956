"""Screenshots of the playground for docs/playground.md: ``make screenshots`` (or
``python -m tests.browser.screenshots docs/images``).

Starts the judge from this worktree, runs a small C program against three cases (one of them
wrong, so a diff shows) and photographs the page on a desktop and a phone, light and dark.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, running_judge, sign_in

SOURCE = """#include <stdio.h>

int main(void) {
    long a, b;
    if (scanf("%ld %ld", &a, &b) != 2) return 1;
    printf("%ld\\n", a + b);
    return 0;
}
"""
CASES = [("1 2", "3"), ("40 2", "42"), ("-5 5", "1")]
SHOTS = [
    ("playground-desktop-light.png", {"width": 1440, "height": 1000}, "light"),
    ("playground-desktop-dark.png", {"width": 1440, "height": 1000}, "dark"),
    ("playground-phone-light.png", {"width": 390, "height": 844}, "light"),
]


def stage(page: Page, token: str) -> None:
    """Fill the page as a person would and wait for the judgement."""
    sign_in(page, token)
    page.get_by_label("Language").select_option("c")
    page.get_by_label("Source code").fill(SOURCE)
    for n, (given, expected) in enumerate(CASES, start=1):
        if n > 1:
            page.get_by_role("button", name="Add case").click()
        group = page.get_by_role("group", name=f"Case {n}")
        group.get_by_label("Input").fill(given)
        group.get_by_label("Expected output").fill(expected)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("WA", timeout=90_000)
    page.evaluate("document.activeElement && document.activeElement.blur()")


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as data,
        running_judge(Path(data)) as judge,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, viewport, scheme in SHOTS:
            context = browser.new_context(
                base_url=judge.url, viewport=viewport, color_scheme=scheme, device_scale_factor=1
            )
            page = context.new_page()
            page.goto("/")
            stage(page, judge.token)
            page.screenshot(path=str(out / name), full_page=True)
            print(out / name)
            context.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images")
