"""Languages as data on the real engine: GET /api/languages, missions naming a `language`, a
custom image appearing without a restart, and every shipped language's templates compiling and
running a hello world under the file names the peers' clients use."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import uuid
from typing import Any

import docker
import jsonschema
import pytest

from orchestrator.languages import expand
from service.keys import LANGUAGES
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, Api, poll

pytestmark = pytest.mark.docker

AUTH = {"Authorization": f"Bearer {ALICE}"}

# A hello world per shipped language id; Java's class is not named after any of the files.
HELLO = {
    "c": '#include <stdio.h>\nint main(void) { puts("hello world"); return 0; }\n',
    "cpp": '#include <iostream>\nint main() { std::cout << "hello world" << std::endl; }\n',
    "python3": 'print("hello world")\n',
    "java": 'class Helper { static String text() { return "hello world"; } }\n'
    "public class Main {\n"
    "    public static void main(String[] args) { System.out.println(Helper.text()); }\n"
    "}\n",
    "javascript": 'console.log("hello world");\n',
    "go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello world") }\n',
    "rust": 'fn main() { println!("hello world"); }\n',
    "bash": "echo hello world\n",
    "plaintext": "hello world\n",
    "multifile": "echo hello world\n",
}


def data_url(text: str) -> str:
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode()


def stdout_of(execute: dict[str, Any]) -> str:
    return base64.b64decode(execute["record"].get("stdout", "")).decode(errors="replace")


async def languages(api: Api) -> dict[str, dict[str, Any]]:
    async with api.session.get(f"{api.url}/api/languages", headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        return {lang["id"]: lang for lang in (await resp.json())["languages"]}


async def run(api: Api, mission: dict[str, Any]) -> dict[str, Any]:
    """Submit with ``?wait=60``; the finished mission's body."""
    status, body, _ = await api.submit(mission, how="json", params={"wait": "60"})
    assert status == 200, body
    assert body["state"] == "done", body
    return body


def hello_mission(lang: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """One mission compiling and running the language's hello world three times in one sandbox,
    the entry file named ``main``, ``file0.code`` (Piston's default) and the language's own
    source file name; and the names in order.

    Each name exists only while it is compiled and run: a template may build every source of the
    job (Go's builds every ``.go`` file, as Piston does), and three copies of one program would
    then declare ``main`` three times."""
    names = list(dict.fromkeys(["main", "file0.code", lang["source_file"]]))
    executes: list[dict[str, Any]] = []
    for name in names:
        executes.append({"name": f"place {name}", "command": ["cp", "hello.src", name]})
        if lang["compile"] is not None:
            executes.append(
                {
                    "name": f"compile {name}",
                    "command": expand(lang["compile"], name),
                    **lang["compile_limits"],
                    "stdout": "compile.txt",
                    "stderr": "compile.txt",
                }
            )
        executes.append(
            {
                "name": f"run {name}",
                "command": expand(lang["run"], name),
                "stdout": f"{name}.out",
                "stderr": f"{name}.err",
            }
        )
        executes.append({"name": f"remove {name}", "command": ["rm", "--", name]})
    files = {"hello.src": data_url(HELLO[lang["id"]])}
    return {"language": lang["id"], "prepare": {"file": files, "execute": executes}}, names


async def test_every_shipped_language_compiles_and_runs_under_any_file_name(
    start_judge: StartJudge,
) -> None:
    """What the Judge0 and Piston doors rely on: each registry entry's templates work for the
    file names their clients send (main, file0.code, the source file)."""
    _, api = await start_judge(max_running=2)
    listed = await languages(api)
    missing = sorted(set(HELLO) - set(listed))
    assert not missing, f"languages not on the engine (make images): {missing}"

    async def one(lang_id: str) -> tuple[str, dict[str, Any], list[str]]:
        mission, names = hello_mission(listed[lang_id])
        return lang_id, await run(api, mission), names

    for lang_id, body, names in await asyncio.gather(*(one(i) for i in sorted(HELLO))):
        assert body["mission"]["image"] == listed[lang_id]["image"]
        executes = body["mission_result"]["prepare"]["execute"]
        report = json.dumps([(e["name"], e["meta"], stdout_of(e)[:500]) for e in executes])
        assert all(e["meta"]["status"] == "" for e in executes), f"{lang_id}: {report}"
        runs = [e for e in executes if e["name"].startswith("run ")]
        assert [e["name"] for e in runs] == [f"run {n}" for n in names]
        assert [stdout_of(e) for e in runs] == ["hello world\n"] * len(names), report


async def test_go_builds_only_the_sources_the_sandbox_holds_now(start_judge: StartJudge) -> None:
    """Go's template builds every ``.go`` file of the job from a copy in /tmp: a second build in
    the same sandbox must not see the first build's copies (here a second ``helper``)."""
    _, api = await start_judge()
    go = (await languages(api))["go"]
    first = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(helper()) }\n'
    extra = 'package main\n\nfunc helper() string { return "first" }\n'
    second = (
        'package main\n\nimport "fmt"\n\nfunc helper() string { return "second" }\n\n'
        "func main() { fmt.Println(helper()) }\n"
    )

    def build_and_run(entry: str) -> list[dict[str, Any]]:
        return [
            {
                "name": f"compile {entry}",
                "command": expand(go["compile"], entry),
                **go["compile_limits"],
                "stdout": "compile.txt",
                "stderr": "compile.txt",
            },
            {"name": f"run {entry}", "command": expand(go["run"], entry), "stdout": f"{entry}.out"},
        ]

    mission = {
        "language": "go",
        "prepare": {
            "file": {
                "main.go": data_url(first),
                "extra.go": data_url(extra),
                "second.txt": data_url(second),
            },
            "execute": [
                *build_and_run("main.go"),
                # The first job's files go; the second job's one source comes.
                {"name": "clear", "command": ["rm", "main.go", "extra.go"]},
                {"name": "place", "command": ["mv", "second.txt", "second.go"]},
                *build_and_run("second.go"),
            ],
        },
    }
    body = await run(api, mission)
    done = body["mission_result"]["prepare"]["execute"]
    report = json.dumps([(e["name"], e["meta"], stdout_of(e)[:500]) for e in done])
    assert all(e["meta"]["status"] == "" for e in done), report
    assert [stdout_of(e) for e in done if e["name"].startswith("run ")] == [
        "first\n",
        "second\n",
    ], report


async def test_list_languages_and_run_a_mission_by_language(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    async with api.session.get(f"{api.url}/api/languages") as resp:
        assert resp.status == 401
    listed = await languages(api)
    python = listed["python3"]
    assert python["image"] == "judge/python3"
    assert python["judge0"]["ids"] == [71]
    assert python["piston"] == {"language": "python", "runtime": None}
    assert python["version"].count(".") == 2
    assert listed["c"]["image"] == "judge/cpp"  # its own image, not judge/default's copy
    # The answer is what the OpenAPI document says it is.
    async with api.session.get(f"{api.url}/api/openapi.json") as resp:
        doc = await resp.json()
    schema = doc["paths"]["/api/languages"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    async with api.session.get(f"{api.url}/api/languages", headers=AUTH) as resp:
        jsonschema.Draft202012Validator(schema).validate(await resp.json())

    # An alias, case-insensitive; the image comes from the registry and is echoed.
    mission = {
        "language": "PY",
        "prepare": {
            "execute": [
                {
                    "command": ["python3", "-c", "import sys; print(sys.version_info[0])"],
                    "stdout": "out.txt",
                }
            ]
        },
    }
    body = await run(api, mission)
    assert body["mission"]["image"] == "judge/python3"
    assert body["mission"]["language"] == "PY"
    assert stdout_of(body["mission_result"]["prepare"]["execute"][0]) == "3\n"

    # An image that declares the language too (judge/default's fallback copy) is consistent.
    body = await run(api, {**mission, "image": "judge/default"})
    assert body["mission"]["image"] == "judge/default"


async def test_bad_languages_are_refused_with_their_path(start_judge: StartJudge) -> None:
    _, api = await start_judge()
    mission: dict[str, Any] = {"prepare": {"execute": [{"command": ["true"]}]}}
    cases = [
        ({"language": "cobol-74"}, "mission.language", "unknown language 'cobol-74'"),
        ({"language": ""}, "mission.language", None),
        ({"language": 7}, "mission.language", None),
        (
            {"language": "python3", "image": "judge/java"},
            "mission.image",
            "image 'judge/java' does not provide language 'python3' (judge/python3 does)",
        ),
    ]
    for extra, path, message in cases:
        status, body, _ = await api.submit({**mission, **extra}, how="json")
        assert status == 400, body
        assert body["error"]["path"] == path, body
        if message is not None:
            assert message in body["error"]["message"], body


DOCKERFILE = """FROM judge/base
LABEL judge.languages='{languages}' judge.languages.image="{tag}"
"""


def build_image(
    tag: str, lang_id: str, version: str = "1.2.3", judge0_id: int | None = None
) -> None:
    """A custom image FROM judge/base declaring one language whose "compiler" is cp and whose
    "interpreter" is sh (built through the engine's API: no CLI, no network)."""
    entry = {
        "id": lang_id,
        "name": "Shell, as a test language",
        "version": version,
        "aliases": [f"{lang_id}-alias"],
        "piston": {"language": lang_id, "runtime": None},
        "judge0": None if judge0_id is None else {"ids": [judge0_id], "name": "Test shell"},
        "source_file": "main.tsh",
        "compile": ["cp", "{file}", "{stem}.sh"],
        "run": ["sh", "{stem}.sh"],
    }
    dockerfile = DOCKERFILE.format(languages=json.dumps([entry]), tag=tag)
    client = docker.from_env(version="1.41")
    try:
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    finally:
        client.close()


def remove_image(tag: str) -> None:
    client = docker.from_env(version="1.41")
    try:
        client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass
    finally:
        client.close()


async def test_a_custom_image_appears_and_goes_without_a_restart(start_judge: StartJudge) -> None:
    """A language image built FROM judge/base while the server runs: the registry finds it on
    its timer, GET /api/languages lists it, a mission names it, the Judge0 and Piston doors
    list it and run a program in it; removed, it is gone again."""
    suffix = uuid.uuid4().hex[:8]
    tag, lang_id = f"judge/test-lang-{suffix}", f"tsh-{suffix}"
    judge0_id = 100_000 + int(suffix[:4], 16)  # no Judge0 id: nothing else claims it
    judge, api = await start_judge(languages_refresh_s=0.2)
    registry = judge.app[LANGUAGES]
    assert registry.get(lang_id) is None
    try:
        await asyncio.to_thread(build_image, tag, lang_id, "1.2.3", judge0_id)
        # The timer's refresh, not a request, finds it.
        lang = await poll(lambda: _get(registry, lang_id), lambda x: x is not None, 10)
        assert lang is not None
        assert lang.image == tag
        assert registry.resolve(lang_id, "1.x") is lang  # how a Piston client finds it
        listed = await languages(api)
        assert listed[lang_id]["version"] == "1.2.3"
        assert listed[lang_id]["image"] == tag

        mission = {
            "language": f"{lang_id}-alias",
            "prepare": {
                "file": {"prog": data_url("echo custom says hi\n")},
                "execute": [
                    {"command": lang.compile_argv("prog")},
                    {"command": lang.run_argv("prog", ["ignored-arg"]), "stdout": "out.txt"},
                ],
            },
        }
        body = await run(api, mission)
        assert body["mission"]["image"] == tag
        assert stdout_of(body["mission_result"]["prepare"]["execute"][1]) == "custom says hi\n"

        # The Judge0 door: its language list and a submission, with no server change.
        judge0 = f"{api.url}/judge0"
        headers = {"X-Auth-Token": ALICE}
        async with api.session.get(f"{judge0}/languages", headers=headers) as resp:
            assert resp.status == 200
            assert {"id": judge0_id, "name": "Test shell (1.2.3)"} in await resp.json()
        submission = {"source_code": "echo judge0 says hi\n", "language_id": judge0_id}
        async with api.session.post(
            f"{judge0}/submissions?wait=true", json=submission, headers=headers
        ) as resp:
            answer = await resp.json()
            assert resp.status == 201, answer
        assert (answer["status"]["id"], answer["stdout"]) == (3, "judge0 says hi\n"), answer

        # The Piston door: its runtimes and an execute (the version range as clients send it).
        async with api.session.get(f"{api.url}/api/v2/runtimes") as resp:
            runtimes = await resp.json()
        assert {"language": lang_id, "version": "1.2.3", "aliases": [f"{lang_id}-alias"]} in [
            {k: r[k] for k in ("language", "version", "aliases")} for r in runtimes
        ]
        execute = {"language": lang_id, "version": "1.x", "files": [{"content": "echo piston\n"}]}
        async with api.session.post(
            f"{api.url}/api/v2/execute", json=execute, headers=AUTH
        ) as resp:
            ran = await resp.json()
            assert resp.status == 200, ran
        assert (ran["language"], ran["version"], ran["run"]["stdout"]) == (
            lang_id,
            "1.2.3",
            "piston\n",
        ), ran
    finally:
        await asyncio.to_thread(remove_image, tag)
    await poll(lambda: _get(registry, lang_id), lambda x: x is None, 10)
    assert lang_id not in await languages(api)
    async with api.session.get(f"{api.url}/judge0/languages", headers=headers) as resp:
        assert judge0_id not in {lang["id"] for lang in await resp.json()}
    async with api.session.get(f"{api.url}/api/v2/runtimes") as resp:
        assert lang_id not in {r["language"] for r in await resp.json()}


async def _get(registry: Any, lang_id: str) -> Any:
    return registry.get(lang_id)


async def test_a_custom_image_replaces_a_judge_language_and_the_start_log_says_so(
    start_judge: StartJudge, caplog: pytest.LogCaptureFixture
) -> None:
    """Two images declare one language id (a unique one, so other tests on this engine see
    nothing change): the one outside judge/ wins, the server's start log says which replaced
    which, missions naming the language run in it; removed, the judge/ image serves again."""
    suffix = uuid.uuid4().hex[:8]
    lang_id = f"tsh-{suffix}"
    shipped, custom = f"judge/test-lang-{suffix}", f"judge-test-custom/tsh-{suffix}"
    try:
        await asyncio.to_thread(build_image, shipped, lang_id, "1.0.0")
        await asyncio.to_thread(build_image, custom, lang_id, "2.0.0")
        with caplog.at_level(logging.INFO, logger="service.languages"):
            judge, api = await start_judge(languages_refresh_s=0.2)
        assert f"language '{lang_id}': {custom} replaces {shipped}" in caplog.text
        registry = judge.app[LANGUAGES]
        lang = registry.get(lang_id)
        assert lang is not None
        assert (lang.image, lang.version) == (custom, "2.0.0")
        assert [p.image for p in registry.registry.providers(lang_id)] == [custom, shipped]
        mission = {"language": lang_id, "prepare": {"execute": [{"command": ["true"]}]}}
        assert (await run(api, mission))["mission"]["image"] == custom
        # The shipped one still declares it: naming both is consistent.
        assert (await run(api, {**mission, "image": shipped}))["mission"]["image"] == shipped
        await asyncio.to_thread(remove_image, custom)
        back = await poll(lambda: _get(registry, lang_id), lambda x: x.image == shipped, 10)
        assert back.version == "1.0.0"
    finally:
        await asyncio.to_thread(remove_image, custom)
        await asyncio.to_thread(remove_image, shipped)
