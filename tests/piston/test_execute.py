"""Piston's execute on the real engine: each field, stage, status and limit as clients see it."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest

from tests.piston.conftest import Execute

pytestmark = pytest.mark.docker


def py(source: str, **changes: Any) -> dict[str, Any]:
    return {"language": "python", "version": "3.x", "files": [{"content": source}], **changes}


def c(source: str, **changes: Any) -> dict[str, Any]:
    return {"language": "c", "version": "*", "files": [{"content": source}], **changes}


async def test_python_stdin_args_and_files(execute: Execute) -> None:
    source = (
        "import sys\n"
        "print(input(), sys.argv[1:])\n"
        "print(open('data.bin','rb').read().hex(), open('sub/h.txt').read())\n"
        "print('oops', file=sys.stderr)\n"
    )
    status, answer = await execute(
        {
            "language": "py",
            "version": "3.10.0",  # pinned by clients: runs on our 3.x
            "files": [
                {"name": "main.py", "content": source},
                {
                    "name": "data.bin",
                    "content": base64.b64encode(b"\x00\xff").decode(),
                    "encoding": "base64",
                },
                {"name": "sub/h.txt", "content": "6869", "encoding": "hex"},
            ],
            "stdin": "hello",
            "args": ["1", "two words"],
        }
    )
    assert status == 200, answer
    assert answer["language"] == "python"
    assert answer["version"].startswith("3.")
    assert "compile" not in answer
    run = answer["run"]
    assert run["stdout"] == "hello ['1', 'two words']\n00ff hi\n"
    assert run["stderr"] == "oops\n"
    # Python buffers a piped stdout until it exits, stderr is written at once: stderr first,
    # unless the judge read both pipes at one wake-up (a busy machine): then stdout comes first.
    # (Write order at distinct moments: test_output_interleaves_the_streams_in_write_order.)
    assert run["output"] in (run["stderr"] + run["stdout"], run["stdout"] + run["stderr"])
    assert (run["code"], run["signal"], run["status"], run["message"]) == (0, None, None, None)
    assert run["memory"] > 1024 * 1024
    assert run["wall_time"] >= run["cpu_time"] >= 0


async def test_c_compiles_then_runs_and_a_compile_error_is_the_run(execute: Execute) -> None:
    ok, bad = await asyncio.gather(
        execute(
            c(
                '#include <stdio.h>\nint main(){int a,b;scanf("%d %d",&a,&b);printf("%d\\n",a+b);}',
                stdin="2 40",
            )
        ),
        execute(c("int main( {")),
    )
    status, answer = ok
    assert status == 200, answer
    assert answer["compile"]["code"] == 0
    assert answer["compile"]["status"] is None
    assert answer["run"]["stdout"] == "42\n"
    status, failed = bad
    assert status == 200, failed
    assert failed["compile"]["status"] == "RE"
    assert failed["compile"]["code"] == 1
    assert "error" in failed["compile"]["stderr"]
    assert failed["run"] == failed["compile"]


async def test_statuses(execute: Execute) -> None:
    exit3, segv, slow, hungry = await asyncio.gather(
        execute(py("import sys; print('bye'); sys.exit(3)")),
        execute(c("int main(){volatile int *p = 0; return *p;}")),
        execute(
            py(
                "import sys\nprint('partial', flush=True)\nwhile True: pass",
                run_timeout=1000,
                run_cpu_time=1000,
            )
        ),
        execute(
            py("x = bytearray(200 * 1024 * 1024)\nprint(len(x))", run_memory_limit=64 * 1024 * 1024)
        ),
    )
    assert {exit3[0], segv[0], slow[0], hungry[0]} == {200}
    run = exit3[1]["run"]
    assert (run["status"], run["code"], run["signal"], run["stdout"]) == ("RE", 3, None, "bye\n")
    run = segv[1]["run"]
    assert (run["status"], run["code"], run["signal"]) == ("SG", None, "SIGSEGV")
    run = slow[1]["run"]
    assert (run["status"], run["signal"], run["code"]) == ("TO", "SIGKILL", None)
    assert run["stdout"] == "partial\n"  # unlike Piston, output before a timeout is kept
    run = hungry[1]["run"]
    assert (run["status"], run["signal"], run["message"]) == (
        "SG",
        "SIGKILL",
        "Memory limit exceeded",
    )


async def test_output_caps(execute: Execute) -> None:
    (_, out), (_, err) = await asyncio.gather(
        execute(py("print('x' * 5000)")),
        execute(py("import sys; sys.stderr.write('é' * 3000)")),
    )
    run = out["run"]
    assert (run["status"], run["message"], len(run["stdout"])) == (
        "OL",
        "stdout length exceeded",
        1024,
    )
    run = err["run"]
    assert (run["status"], run["message"], run["stderr"]) == (
        "EL",
        "stderr length exceeded",
        "é" * 1024,
    )


async def test_the_same_source_compiles_once(execute: Execute) -> None:
    source = '#include <stdio.h>\nint main(){int a;scanf("%d",&a);printf("%d\\n",a*2);}\n'
    first = await execute(c(source, stdin="1"))
    rest = await asyncio.gather(*(execute(c(source, stdin=str(i))) for i in range(2, 5)))
    answers = [first, *rest]
    assert [a[1]["run"]["stdout"] for a in answers] == ["2\n", "4\n", "6\n", "8\n"]
    # Later executes reuse the compiled box: the compile stage is the first one's, as it was.
    assert all(a[1]["compile"] == first[1]["compile"] for a in answers)
    # The cache is per source: another source compiles on its own.
    other = await execute(c(source.replace("a*2", "a*3"), stdin="5"))
    assert other[1]["run"]["stdout"] == "15\n"


async def test_wall_clock_and_file_size_limits(execute: Execute) -> None:
    sleeper, writer = await asyncio.gather(
        execute(py("import time; time.sleep(10)", run_timeout=1000, run_cpu_time=1000)),
        execute(
            c(
                "#include <stdio.h>\n#include <string.h>\nstatic char b[1<<20];\n"
                'int main(){FILE*f=fopen("big","wb");memset(b,120,sizeof b);'
                'for(int i=0;i<11;i++)fwrite(b,1,sizeof b,f);fclose(f);puts("never");}'
            )
        ),
    )
    run = sleeper[1]["run"]
    assert (run["status"], run["signal"], run["message"]) == (
        "TO",
        "SIGKILL",
        "Time limit exceeded (wall clock)",
    )
    assert run["cpu_time"] < 500
    run = writer[1]["run"]
    assert (run["status"], run["signal"], run["message"]) == (
        "SG",
        "SIGXFSZ",
        "File size limit exceeded",
    )
    assert run["stdout"] == ""


# A program per Piston language of the shipped images: greets the name it reads.
HELLO = {
    "bash": 'read x; echo "hi $x"',
    "c": '#include <stdio.h>\nint main(){char s[64]; scanf("%63s", s); printf("hi %s\\n", s);}',
    "c++": "#include <iostream>\n#include <string>\n"
    'int main(){std::string s; std::cin >> s; std::cout << "hi " << s << std::endl;}',
    "go": 'package main\nimport "fmt"\n'
    'func main(){ var s string; fmt.Scan(&s); fmt.Println("hi", s) }',
    "java": "public class Main { public static void main(String[] a) {"
    ' System.out.println("hi " + new java.util.Scanner(System.in).next()); } }',
    "javascript": 'console.log("hi " + require("fs").readFileSync(0, "utf8").trim())',
    "python": "print('hi', input())",
    "rust": "use std::io::*;\nfn main(){ let mut s = String::new();"
    ' stdin().read_line(&mut s).unwrap(); println!("hi {}", s.trim()); }',
}


async def test_every_listed_runtime_runs(piston: str, execute: Execute) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{piston}/runtimes") as r:
        languages = sorted({rt["language"] for rt in await r.json()})
    assert set(languages) <= set(HELLO), f"no hello world for {set(languages) - set(HELLO)}"
    bodies = [
        {"language": lang, "version": "*", "files": [{"content": HELLO[lang]}], "stdin": "bob"}
        for lang in languages
    ]
    answers = await asyncio.gather(*(execute(b) for b in bodies))
    for lang, (status, answer) in zip(languages, answers, strict=True):
        assert status == 200, (lang, answer)
        assert answer["run"]["stdout"] == "hi bob\n", (lang, answer)


# Turns between stdout and stderr; before switching streams it waits until the judge has read
# what it wrote (FIONREAD on its end of the pipe): writes at distinct moments, whatever the load.
TURNS_PY = """
import fcntl, struct, sys, termios, time
for i in range(8):
    stream = (sys.stdout, sys.stderr)[i % 2]
    print(('out', 'err')[i % 2], i, file=stream, flush=True)
    while struct.unpack('i', fcntl.ioctl(stream.fileno(), termios.FIONREAD, b'0000'))[0]:
        time.sleep(0.0005)
"""


async def test_output_interleaves_the_streams_in_write_order(execute: Execute) -> None:
    (status, answer), (_, over) = await asyncio.gather(
        execute(py(TURNS_PY)),
        execute(py("import sys\nprint('a', flush=True)\nsys.stderr.write('b' * 2000)")),
    )
    assert status == 200, answer
    run = answer["run"]
    lines = [f"{('out', 'err')[i % 2]} {i}\n" for i in range(8)]
    assert run["output"] == "".join(lines)
    assert run["stdout"] == "".join(lines[0::2])
    assert run["stderr"] == "".join(lines[1::2])
    # A stream over its cap: output holds as many characters as stdout and stderr together.
    run = over["run"]
    assert run["status"] == "EL"
    assert run["output"] == "a\n" + "b" * 1024


def job(language: str, *files: dict[str, str]) -> dict[str, Any]:
    return {"language": language, "version": "*", "files": list(files)}


async def test_every_c_and_cpp_source_of_a_job_is_compiled(execute: Execute) -> None:
    header = {"name": "util.h", "content": "int twice(int x);\n"}
    c_main = '#include <stdio.h>\n#include "util.h"\nint main(){printf("%d\\n", twice(21));}\n'
    cpp_main = (
        '#include <iostream>\n#include "util.h"\nint main(){std::cout << twice(4) << "\\n";}\n'
    )
    two_c, entry_anyname, two_cpp = await asyncio.gather(
        execute(
            job(
                "c",
                {"name": "main.c", "content": c_main},
                {"name": "util.c", "content": "int twice(int x) { return 2 * x; }\n"},
                header,
                {"name": "notes.txt", "content": "not a source"},
            )
        ),
        execute(
            job(
                "c",
                {"content": c_main},  # the entry, whatever its name (file0.code)
                {"name": "lib/util.c", "content": "int twice(int x) { return x + x; }\n"},
                header,
            )
        ),
        execute(
            job(
                "c++",
                {"name": "main.cpp", "content": cpp_main},
                {"name": "util.cc", "content": "int twice(int x) { return x * 2; }\n"},
                header,
            )
        ),
    )
    for status, answer in (two_c, entry_anyname, two_cpp):
        assert status == 200, answer
        assert answer["compile"]["code"] == 0, answer["compile"]
    assert two_c[1]["run"]["stdout"] == "42\n"
    assert entry_anyname[1]["run"]["stdout"] == "42\n"
    assert two_cpp[1]["run"]["stdout"] == "8\n"


async def test_every_go_file_of_a_job_is_built(execute: Execute) -> None:
    status, answer = await execute(
        job(
            "go",
            {"content": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(twice(21)) }\n'},
            {
                "name": "util.go",
                "content": "package main\n\nfunc twice(x int) int { return 2 * x }\n",
            },
            {"name": "data.txt", "content": "not a source"},
        )
    )
    assert status == 200, answer
    assert answer["compile"]["code"] == 0, answer["compile"]
    assert answer["run"]["stdout"] == "42\n"
