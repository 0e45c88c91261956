"""The playground as a person uses it: controls found by their labels and roles, programs run on
the real engine, verdicts read off the page."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import Judge, Watch, sign_in

RESULT_TIMEOUT_MS = 90_000

PYTHON_SUM = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
C_SUM = (
    "#include <stdio.h>\n"
    "int main(void) {\n"
    "long a = 0, s = 0;\n"
    'while (scanf("%ld", &a) == 1) s += a;\n'
    'printf("%ld\\n", s);\n'
    "return 0;\n"
    "}\n"
)


def case(page: Page, n: int) -> Locator:
    return page.get_by_role("group", name=f"Case {n}")


def result(page: Page, n: int) -> Locator:
    return (
        page.get_by_role("list", name="Cases")
        .get_by_role("listitem")
        .filter(has=page.get_by_text(f"Case {n}", exact=True))
    )


def run(page: Page, summary: str | re.Pattern[str]) -> None:
    """Press Run and wait for the mission's summary line."""
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(summary, timeout=RESULT_TIMEOUT_MS)


def write(page: Page, language: str, source: str) -> None:
    page.get_by_label("Language").select_option(language)
    page.get_by_label("Source code").fill(source)


def test_a_python_program_runs_and_shows_output_time_and_memory(
    playground: Page, judge: Judge
) -> None:
    sign_in(playground, judge.token)
    write(playground, "python3", PYTHON_SUM)
    playground.get_by_label("Input").fill("1 2 3\n")
    run(playground, "1 OK")
    first = result(playground, 1)
    expect(first).to_contain_text("Ran")
    expect(first).to_contain_text("exit 0")
    expect(first).to_contain_text(re.compile(r"\d+ ms CPU"))
    expect(first).to_contain_text(re.compile(r"\d+(\.\d)? (KiB|MiB)"))
    expect(first.get_by_role("region", name="Output", exact=True)).to_contain_text("6")


def test_a_c_program_is_compiled_once_and_judged_against_the_expected_output(
    playground: Page, judge: Judge
) -> None:
    sign_in(playground, judge.token)
    write(playground, "c", C_SUM)
    case(playground, 1).get_by_label("Input").fill("40 2")
    case(playground, 1).get_by_label("Expected output").fill("42")
    playground.get_by_role("button", name="Add case").click()
    case(playground, 2).get_by_label("Input").fill("1 1")
    case(playground, 2).get_by_label("Expected output").fill("2\n\n")
    run(playground, "2 AC")
    expect(result(playground, 1)).to_contain_text("Accepted")
    expect(result(playground, 2)).to_contain_text("Accepted")


def test_a_compile_error_is_shown_as_one(playground: Page, judge: Judge) -> None:
    sign_in(playground, judge.token)
    write(playground, "c", "int main(void) { return missing; }\n")
    run(playground, "1 CE")
    error = playground.get_by_role("region", name="Compilation error")
    expect(error).to_contain_text("missing")
    expect(result(playground, 1)).to_contain_text("Compilation error")


@pytest.mark.parametrize(
    ("program", "limit", "value", "verdict", "name"),
    [
        ("while True:\n    pass\n", "CPU time (s)", "0.5", "TLE", "Time limit exceeded"),
        ('s = "x" * (300 << 20)\n', "Memory (MiB)", "64", "MLE", "Memory limit exceeded"),
    ],
)
def test_a_runaway_program_gets_its_verdict_under_the_limit_set(
    playground: Page, judge: Judge, program: str, limit: str, value: str, verdict: str, name: str
) -> None:
    sign_in(playground, judge.token)
    write(playground, "python3", program)
    playground.get_by_label(limit).fill(value)
    run(playground, f"1 {verdict}")
    expect(result(playground, 1)).to_contain_text(name)


def test_several_cases_are_judged_in_one_mission_and_a_wrong_answer_shows_a_diff(
    playground: Page, judge: Judge
) -> None:
    sign_in(playground, judge.token)
    write(playground, "python3", PYTHON_SUM)
    pairs = [("1 2", "3"), ("2 2", "5"), ("10 -4", "6   \n")]
    for n, (given, expected) in enumerate(pairs, start=1):
        if n > 1:
            playground.get_by_role("button", name="Add case").click()
        case(playground, n).get_by_label("Input").fill(given)
        case(playground, n).get_by_label("Expected output").fill(expected)
    playground.get_by_label("Fresh sandbox per case").check()
    run(playground, "2 AC · 1 WA")
    wrong = result(playground, 2)
    expect(wrong).to_contain_text("Wrong answer")
    diff = wrong.get_by_label("Difference: - expected, + actual")
    expect(diff).to_contain_text("- 5")
    expect(diff).to_contain_text("+ 4")
    # One mission: the history has it once, and the address names it.
    mission_id = re.search(r"mission=(\d+)", playground.url)
    assert mission_id is not None
    history = playground.get_by_role("region", name="History")
    expect(history.get_by_role("link", name=re.compile(f"#{mission_id[1]}\\b"))).to_be_visible()


def test_a_reload_restores_the_result_from_the_address_without_the_token_in_it(
    playground: Page, judge: Judge, watch: Watch
) -> None:
    sign_in(playground, judge.token)
    write(playground, "python3", 'print("restored", input())\n')
    playground.get_by_label("Input").fill("here")
    playground.get_by_label("Expected output").fill("restored here")
    run(playground, "1 AC")
    assert re.search(r"[?&]mission=\d+", playground.url)
    assert judge.token not in playground.url
    playground.reload()
    expect(playground.get_by_role("status")).to_contain_text("1 AC", timeout=RESULT_TIMEOUT_MS)
    expect(playground.get_by_label("Source code")).to_have_value('print("restored", input())\n')
    expect(playground.get_by_label("Input")).to_have_value("here")
    expect(playground.get_by_label("Token")).to_have_value(judge.token)
    # The tab's sessionStorage holds the token; nothing that outlives the tab does.
    assert judge.token in playground.evaluate("JSON.stringify(sessionStorage)")
    assert judge.token not in playground.evaluate("JSON.stringify(localStorage)")
    assert judge.token not in playground.evaluate("document.cookie")
    requests: list[str] = []
    playground.on("request", lambda r: requests.append(r.url))
    playground.reload()
    expect(playground.get_by_role("status")).to_contain_text("1 AC", timeout=RESULT_TIMEOUT_MS)
    assert requests
    assert not [u for u in requests if judge.token in u]


def test_live_progress_comes_from_the_event_stream(playground: Page, judge: Judge) -> None:
    sign_in(playground, judge.token)
    streams: list[dict[str, str]] = []
    playground.on(
        "request",
        lambda r: streams.append(r.headers) if r.url.endswith("/events") else None,
    )
    write(playground, "python3", "import time\ntime.sleep(0.3)\nprint(input())\n")
    playground.get_by_label("Input").fill("x")
    playground.get_by_role("button", name="Run", exact=True).click()
    expect(playground.get_by_role("status")).to_contain_text(
        re.compile(r"Running|Queued"), timeout=RESULT_TIMEOUT_MS
    )
    expect(playground.get_by_role("status")).to_contain_text("1 OK", timeout=RESULT_TIMEOUT_MS)
    assert streams, "the page did not follow the mission's events"
    assert streams[0]["authorization"] == f"Bearer {judge.token}"


def test_keyboard_only_at_phone_width(playground: Page, judge: Judge) -> None:
    playground.set_viewport_size({"width": 390, "height": 844})
    sign_in(playground, judge.token)
    playground.get_by_label("Language").select_option("python3")
    editor = playground.get_by_label("Source code")
    editor.focus()
    playground.keyboard.press("ControlOrMeta+a")
    playground.keyboard.type("x = input()\nif x:\n")  # Enter after ":" indents
    playground.keyboard.press("Shift+Tab")  # the editor takes Tab: it unindents...
    playground.keyboard.press("Tab")  # ...and indents
    playground.keyboard.type("print(x * 2)")
    expect(editor).to_have_value("x = input()\nif x:\n    print(x * 2)")
    playground.keyboard.press("Escape")
    playground.keyboard.press("Tab")  # after Escape, Tab leaves the editor
    assert playground.evaluate("document.activeElement.id") != "source"
    playground.get_by_label("Input").focus()
    playground.keyboard.press("ControlOrMeta+a")
    playground.keyboard.type("ab")
    playground.keyboard.press("Control+Enter")
    expect(playground.get_by_role("status")).to_contain_text("1 OK", timeout=RESULT_TIMEOUT_MS)
    expect(result(playground, 1).get_by_role("region", name="Output", exact=True)).to_contain_text(
        "abab"
    )
    width = playground.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width} px)"


def test_the_status_panel_and_dark_mode(playground: Page, judge: Judge) -> None:
    status = playground.get_by_role("region", name="Server")
    expect(status).to_contain_text("Engine")
    expect(status).to_contain_text("Docker")
    expect(status).to_contain_text("sqlite")
    expect(status).to_contain_text("Queue depth")
    expect(status).to_contain_text("Callbacks pending")
    light = playground.evaluate("getComputedStyle(document.body).backgroundColor")
    playground.emulate_media(color_scheme="dark")
    dark = playground.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light != dark


def test_a_wrong_token_is_told(playground: Page, watch: Watch) -> None:
    # Chromium reports every 4xx answer on the console; this one is the point of the test.
    watch.allowed.append(re.compile(r"status of 401 \(Unauthorized\)"))
    playground.get_by_label("Token").fill("not-a-token")
    playground.get_by_label("Token").press("Tab")
    expect(playground.get_by_role("alert")).to_contain_text("refused")


def test_a_running_mission_can_be_cancelled(playground: Page, judge: Judge) -> None:
    sign_in(playground, judge.token)
    write(playground, "python3", "while True:\n    pass\n")
    playground.get_by_label("CPU time (s)").fill("20")
    playground.get_by_role("button", name="Run", exact=True).click()
    expect(playground.get_by_role("status")).to_contain_text("Running", timeout=RESULT_TIMEOUT_MS)
    playground.get_by_role("button", name="Cancel").click()
    expect(playground.get_by_role("status")).to_contain_text("cancelled", timeout=30_000)
    expect(result(playground, 1)).to_contain_text("cancelled")


def test_a_mission_opens_from_the_history(playground: Page, judge: Judge) -> None:
    sign_in(playground, judge.token)
    write(playground, "python3", 'print("from history")\n')
    run(playground, "1 OK")
    mission_id = re.search(r"mission=(\d+)", playground.url)
    assert mission_id is not None
    playground.goto("/")  # a fresh page: the token is still in this tab
    playground.get_by_label("Source code").fill("print('something else')\n")
    history = playground.get_by_role("region", name="History")
    history.get_by_role("link", name=re.compile(f"#{mission_id[1]}\\b")).click()
    expect(playground.get_by_role("status")).to_contain_text("1 OK")
    expect(playground.get_by_label("Source code")).to_have_value('print("from history")\n')
    assert playground.url.endswith(f"?mission={mission_id[1]}")


def test_every_control_has_a_visible_label_or_name(playground: Page, judge: Judge) -> None:
    sign_in(playground, judge.token)
    playground.get_by_role("button", name="Add case").click()
    unnamed = playground.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((c) => c.offsetParent !== null)
            .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
                           && !c.textContent.trim())
            .map((c) => c.outerHTML)"""
    )
    assert unnamed == []
    for label in ("Token", "Language", "Source code", "Input", "CPU time (s)", "Memory (MiB)"):
        expect(playground.get_by_text(label, exact=True).first).to_be_visible()


def test_a_draft_survives_a_reload_of_the_tab(playground: Page, judge: Judge) -> None:
    sign_in(playground, judge.token)
    write(playground, "python3", "print('draft')\n")
    playground.get_by_role("button", name="Add case").click()
    case(playground, 2).get_by_label("Expected output").fill("draft")
    playground.get_by_label("Memory (MiB)").fill("128")
    playground.reload()
    expect(playground.get_by_label("Source code")).to_have_value("print('draft')\n")
    expect(case(playground, 2).get_by_label("Expected output")).to_have_value("draft")
    expect(playground.get_by_label("Memory (MiB)")).to_have_value("128")
    expect(playground.get_by_label("Language")).to_have_value("python3")


def submit(judge: Judge, mission: dict[str, object]) -> int:
    """A mission sent through the API directly, not through the page."""
    request = urllib.request.Request(
        f"{judge.url}/api/missions",
        data=json.dumps({"mission": mission}).encode(),
        headers={"Authorization": f"Bearer {judge.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return int(json.load(resp)["msg"]["id"])


def test_a_mission_the_page_did_not_make_shows_each_execute(playground: Page, judge: Judge) -> None:
    mission_id = submit(
        judge,
        {
            "prepare": {
                "execute": [
                    {
                        # Still running when the page opens it: the page follows, then shows.
                        "name": "greet",
                        "command": ["sh", "-c", "sleep 1; echo from the API"],
                        "stdout": "out.txt",
                    },
                    {"name": "fail", "command": ["sh", "-c", "exit 3"]},
                ]
            }
        },
    )
    playground.goto(f"/?mission={mission_id}")
    sign_in(playground, judge.token)
    expect(playground.get_by_role("status")).to_contain_text("Not made by the playground")
    executes = playground.get_by_role("list", name="Cases").get_by_role("listitem")
    greet = executes.filter(has_text="greet")
    expect(greet.get_by_role("region", name="Output", exact=True)).to_contain_text("from the API")
    expect(executes.filter(has_text="fail")).to_contain_text("RE")


def test_the_history_pages_through_older_missions(playground: Page, judge: Judge) -> None:
    for _ in range(22):
        submit(judge, {})
    sign_in(playground, judge.token)
    history = playground.get_by_role("region", name="History")
    links = history.get_by_role("link")
    expect(links).to_have_count(20)
    more = history.get_by_role("button", name=re.compile(r"Show more \(\d+ older\)"))
    total = 20 + int(re.findall(r"\d+", more.inner_text())[0])
    more.click()
    expect(links).to_have_count(min(total, 40))
