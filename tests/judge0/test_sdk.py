"""Judge0's own Python SDK (PyPI ``judge0`` 0.0.8), unchanged, against the door: every language
of the issue with test cases as batches (each compiled once), and the statuses it reads."""

from __future__ import annotations

from typing import Any

import judge0
import pytest
from judge0 import Status, Submission
from judge0.filesystem import File, Filesystem

from tests.judge0.conftest import cache, client, sdk
from tests.service.support import ALICE, BOB

pytestmark = pytest.mark.docker

A_PLUS_B = {
    50: '#include <stdio.h>\nint main(){long a,b;scanf("%ld %ld",&a,&b);printf("%ld\\n",a+b);}',
    54: "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<'\\n';}",
    62: "import java.util.*;\npublic class Main { public static void main(String[] x) {\n"
    "Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }",
    63: 'const [a, b] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number);\n'
    "console.log(a + b);",
    71: "a, b = map(int, input().split())\nprint(a + b)",
    60: 'package main\nimport "fmt"\nfunc main() { var a, b int; fmt.Scan(&a, &b); '
    "fmt.Println(a + b) }",
    73: "use std::io::Read;\nfn main() { let mut s = String::new();\n"
    "std::io::stdin().read_to_string(&mut s).unwrap();\n"
    "let v: i64 = s.split_whitespace().map(|x| x.parse::<i64>().unwrap()).sum();\n"
    'println!("{}", v); }',
    46: "read a b\necho $((a + b))",
}
CASES = [("1 2", "3"), ("40 2", "42"), ("5 5", "11")]  # the last one is wrong on purpose
COMPILED = {50, 54, 62, 60, 73}


@pytest.mark.parametrize("language_id", sorted(A_PLUS_B))
async def test_every_language_judges_a_batch_of_test_cases(j0: Any, language_id: int) -> None:
    judge, _ = j0
    misses = cache(judge).misses

    def run() -> Any:
        c = client(judge)
        return judge0.run(
            client=c, source_code=A_PLUS_B[language_id], language=language_id, test_cases=CASES
        )

    results = await sdk(run)
    assert [r.status for r in results] == [Status.ACCEPTED, Status.ACCEPTED, Status.WRONG_ANSWER]
    assert [r.stdout for r in results] == ["3\n", "42\n", "10\n"]
    for r in results:
        assert r.time is not None
        assert r.time >= 0
        assert r.memory is not None
        assert r.memory > 0
        assert r.created_at is not None
        assert r.finished_at is not None
    # Three submissions of one source: compiled once.
    assert cache(judge).misses - misses == (1 if language_id in COMPILED else 0)


async def test_the_sdks_aliases_cpp_is_52_an_older_id_running_the_current_gcc(j0: Any) -> None:
    judge, _ = j0

    def run() -> Any:
        c = client(judge)
        name = c.get_language(52).name
        return name, judge0.run(
            client=c, source_code=A_PLUS_B[54], language=judge0.CPP, stdin="2 3"
        )

    name, result = await sdk(run)
    assert name.startswith("C++ (GCC 7.4.0, runs ")
    assert result.status == Status.ACCEPTED
    assert result.stdout == "5\n"


async def test_plain_text_and_a_multi_file_program(j0: Any) -> None:
    judge, _ = j0
    files = Filesystem(
        content=[
            File(name="main.c", content='#include <stdio.h>\nint main(){puts("multi");}'),
            File(name="compile", content="gcc -o prog main.c"),
            File(name="run", content='./prog "$@"'),
        ]
    )

    def run() -> Any:
        c = client(judge)
        text = judge0.run(client=c, source_code="just text\n", language=judge0.PLAIN_TEXT)
        project = judge0.run(
            client=c,
            submissions=Submission(
                source_code="", language=judge0.MULTI_FILE, additional_files=files
            ),
        )
        return text, project

    text, project = await sdk(run)
    assert (text.status, text.stdout) == (Status.ACCEPTED, "just text\n")
    assert (project.status, project.stdout) == (Status.ACCEPTED, "multi\n")


PY_CASES: list[tuple[str, Any, dict[str, Any], str | None]] = [
    ("import time\nwhile True: pass", Status.TIME_LIMIT_EXCEEDED, {"cpu_time_limit": 0.5}, None),
    ("import sys\nsys.exit(3)", Status.RUNTIME_ERROR_NZEC, {}, None),
    ("import os\nos.kill(os.getpid(), 11)", Status.RUNTIME_ERROR_SIGSEGV, {}, None),
    ("import os\nos.abort()", Status.RUNTIME_ERROR_SIGABRT, {}, None),
    ("import os\nos.kill(os.getpid(), 8)", Status.RUNTIME_ERROR_SIGFPE, {}, None),
    (
        "x = bytearray(200 * 1024 * 1024)",
        Status.RUNTIME_ERROR_OTHER,
        {"memory_limit": 65536},
        "Memory limit exceeded",
    ),
    ("print('x' * 3000)", Status.RUNTIME_ERROR_SIGXFSZ, {"max_file_size": 1}, None),
    (
        "import time\ntime.sleep(5)",
        Status.TIME_LIMIT_EXCEEDED,
        {"wall_time_limit": 1},
        "Time limit exceeded (wall clock)",
    ),
    (
        "import threading, time\n"
        "ts = [threading.Thread(target=time.sleep, args=(2,)) for _ in range(20)]\n"
        "[t.start() for t in ts]",
        Status.RUNTIME_ERROR_OTHER,
        {"max_processes_and_or_threads": 5},
        "Process limit exceeded (max_processes_and_or_threads)",
    ),
]


@pytest.mark.parametrize(("source", "status", "extra", "message"), PY_CASES)
async def test_statuses_the_sdk_reads(
    j0: Any, source: str, status: Status, extra: dict[str, Any], message: str | None
) -> None:
    judge, _ = j0

    def run() -> Any:
        return judge0.run(client=client(judge), source_code=source, language=judge0.PYTHON, **extra)

    result = await sdk(run)
    assert result.status == status
    if message is not None:
        assert judge0.common.decode(result.message) == message  # the SDK leaves it base64


async def test_a_file_over_max_file_size_is_sigxfsz(j0: Any) -> None:
    judge, _ = j0

    def run() -> Any:
        return judge0.run(
            client=client(judge),
            source_code="exec head -c 5000 /dev/zero > big",
            language=judge0.BASH,
            max_file_size=2,
        )

    result = await sdk(run)
    assert result.status == Status.RUNTIME_ERROR_SIGXFSZ


async def test_a_stack_limit_makes_deep_recursion_a_sigsegv(j0: Any) -> None:
    judge, _ = j0
    source = (
        "int f(int n) { volatile char pad[1024]; pad[0] = n; return n ? f(n - 1) + pad[0] : 0; }\n"
    )
    source += "int main(void) { return f(100000000); }"

    def run() -> Any:
        return judge0.run(
            client=client(judge), source_code=source, language=judge0.C, stack_limit=1024
        )

    result = await sdk(run)
    assert result.status == Status.RUNTIME_ERROR_SIGSEGV


async def test_a_compilation_error_is_compiled_once_per_batch(j0: Any) -> None:
    judge, _ = j0
    misses = cache(judge).misses

    def run() -> Any:
        return judge0.run(
            client=client(judge), source_code="int main( {", language=judge0.C, test_cases=CASES
        )

    results = await sdk(run)
    assert {r.status for r in results} == {Status.COMPILATION_ERROR}
    assert all("error" in (r.compile_output or "") for r in results)
    assert all(r.stdout is None and r.time is None for r in results)
    assert cache(judge).misses - misses == 1


async def test_output_that_is_not_utf8_reaches_the_sdk_through_base64(j0: Any) -> None:
    judge, _ = j0

    def run() -> Any:
        return judge0.run(
            client=client(judge),
            language=judge0.PYTHON,
            source_code="import sys\nsys.stdout.buffer.write(b'\\xff\\xfeok')",
        )

    result = await sdk(run)
    assert result.status == Status.ACCEPTED
    assert result.stdout == "\\xff\\xfeok"  # the SDK's own backslashreplace


async def test_identical_submissions_close_in_time_reuse_the_compile_per_tenant(j0: Any) -> None:
    judge, _ = j0
    source = A_PLUS_B[50] + "\n// reused\n"

    def run(token: str) -> Any:
        return judge0.run(
            client=client(judge, token),
            source_code=source,
            language=judge0.C,
            stdin="2 2",
            expected_output="4",
        )

    misses, hits = cache(judge).misses, cache(judge).hits
    first = await sdk(lambda: run(ALICE))
    second = await sdk(lambda: run(ALICE))
    assert (first.status, second.status) == (Status.ACCEPTED, Status.ACCEPTED)
    assert (cache(judge).misses - misses, cache(judge).hits - hits) == (1, 1)
    other = await sdk(lambda: run(BOB))  # another tenant compiles its own
    assert other.status == Status.ACCEPTED
    assert cache(judge).misses - misses == 2
