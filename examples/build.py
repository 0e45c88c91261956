"""Write the example missions (``examples/*.json``) from the programs in this file.

The missions carry their programs as ``data:`` URLs, so they need no file server. Edit a program
here and run ``python3 examples/build.py``; ``tests/deploy/test_examples.py`` checks the JSON files
are up to date and runs each one on a real server.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def data(text: str) -> str:
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode()


HELLO: dict[str, Any] = {
    "prepare": {"execute": [{"name": "hello", "command": ["echo", "hello world"], "stdout": "out"}]}
}

SUM_C = r"""#include <stdio.h>

int main(void) {
    long long n, x, sum = 0;
    if (scanf("%lld", &n) != 1) return 1;
    for (long long i = 0; i < n; i++) {
        if (scanf("%lld", &x) != 1) return 1;
        sum += x;
    }
    printf("%lld\n", sum);
    return 0;
}
"""

SUM_TESTS = [
    ("3\n1 2 3\n", "6\n"),
    ("1\n-7\n", "-7\n"),
    ("4\n1000000000 1000000000 1000000000 1000000000\n", "4000000000\n"),
]

C_JUDGE: dict[str, Any] = {
    "prepare": {
        "file": {"sum.c": data(SUM_C)},
        "execute": [
            {
                "name": "compile",
                "command": ["gcc", "-O2", "-std=c17", "-o", "sum", "sum.c"],
                "memory_limit": 262144,
                "stdout": "compile.txt",
                "stderr": "compile.txt",
            }
        ],
    },
    "tasks": {
        "task": [
            {"file": {"t__TASK_ID__.in": data(i), "t__TASK_ID__.ans": data(a)}}
            for i, a in SUM_TESTS
        ],
        "execute": [
            {
                "name": "run",
                "command": ["./sum"],
                "time_limit": 1000,
                "memory_limit": 65536,
                "stdin": "t__TASK_ID__.in",
                "stdout": "t__TASK_ID__.out",
                "stderr": "t__TASK_ID__.err",
            },
            {
                "name": "check",
                "command": ["diff", "t__TASK_ID__.out", "t__TASK_ID__.ans"],
                "stdout": "t__TASK_ID__.diff",
            },
        ],
    },
}

SOLUTION_PY = '''def fib(n):
    """The student's answer: wrong for n == 0 on purpose, so the grade is not perfect."""
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return a
'''

GRADER_PY = """import json
import solution

CASES = [(0, 0), (1, 1), (2, 1), (10, 55), (50, 12586269025)]
passed = 0
for n, want in CASES:
    try:
        got = solution.fib(n)
    except Exception as e:
        got = repr(e)
    ok = got == want
    passed += ok
    print(f"fib({n}) = {got!r}: {'ok' if ok else f'expected {want}'}")
print(json.dumps({"score": passed, "out_of": len(CASES)}))
"""

PYTHON_GRADER: dict[str, Any] = {
    "image": "judge/python3",
    "prepare": {
        "file": {"solution.py": data(SOLUTION_PY), "grader.py": data(GRADER_PY)},
        "execute": [
            {
                "name": "syntax",
                "command": ["python3", "-m", "py_compile", "solution.py"],
                "stderr": "syntax.txt",
            },
            {
                "name": "grade",
                "command": ["python3", "grader.py"],
                "time_limit": 5000,
                "stdout": "grade.txt",
                "stderr": "grade.err",
            },
        ],
    },
}

APLUSB_CPP = r"""#include <iostream>

int main() {
    long long a, b;
    std::cin >> a >> b;
    std::cout << a + b << "\n";
}
"""

APLUSB_TESTS = [
    ("1 2\n", "3\n"),
    ("-5 7\n", "2\n"),
    ("1000000000 1000000000\n", "2000000000\n"),
    ("123456789012 -987654321098\n", "-864197532086\n"),
]

APLUSB: dict[str, Any] = {
    "image": "judge/cpp",
    "prepare": {
        "file": {"aplusb.cpp": data(APLUSB_CPP)},
        "execute": [
            {
                "name": "compile",
                "command": ["g++", "-O2", "-std=c++17", "-o", "aplusb", "aplusb.cpp"],
                "memory_limit": 524288,
                "stdout": "compile.txt",
                "stderr": "compile.txt",
            }
        ],
    },
    "tasks": {
        "task": [
            {"file": {"ab__TASK_ID__.in": data(i), "ab__TASK_ID__.ans": data(a)}}
            for i, a in APLUSB_TESTS
        ],
        "execute": [
            {
                "name": "a+b",
                "command": ["./aplusb"],
                "time_limit": 1000,
                "stdin": "ab__TASK_ID__.in",
                "stdout": "ab__TASK_ID__.out",
                "stderr": "ab__TASK_ID__.err",
            },
            {
                "name": "check",
                "command": ["cmp", "ab__TASK_ID__.out", "ab__TASK_ID__.ans"],
                "stdout": "ab__TASK_ID__.cmp",
            },
        ],
    },
}

LIMITS: dict[str, Any] = {
    "prepare": {
        "execute": [
            {
                "name": "endless loop",
                "command": ["python3", "-c", "while True: pass"],
                "time_limit": 500,
                "stdout": "loop.txt",
            },
            {
                "name": "memory hog",
                "command": ["python3", "-c", "x = b'x' * (256 << 20)"],
                "memory_limit": 32768,
                "stdout": "hog.txt",
                "stderr": "hog.txt",
            },
            {
                "name": "crash",
                "command": ["sh", "-c", "echo giving up >&2; exit 3"],
                "stderr": "crash.txt",
            },
        ]
    }
}

GUESS_C = r"""#include <stdio.h>
#include <string.h>

/* Binary search for the interactor's secret in 1..1000000: ask "? n", read "<", ">" or "=". */
int main(void) {
    long lo = 1, hi = 1000000;
    char answer[8];
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        printf("? %ld\n", mid);
        fflush(stdout);
        if (scanf("%7s", answer) != 1) return 1;
        if (strcmp(answer, "=") == 0) return 0;
        if (strcmp(answer, "<") == 0) hi = mid - 1; else lo = mid + 1;
    }
    return 1;
}
"""

GUESS_INTERACTOR = """import sys

# The secret is a private file: the judged program cannot open it.
secret = int(open(sys.argv[1]).read())
for queries in range(1, 31):
    line = sys.stdin.readline()
    if not line.startswith("? "):
        print(f"wrong answer: expected a query, got {line!r}", file=sys.stderr)
        sys.exit(1)
    guess = int(line[2:])
    if guess == secret:
        print("=", flush=True)
        print(f"ok: found {secret} in {queries} queries", file=sys.stderr)
        sys.exit(0)
    print("<" if secret < guess else ">", flush=True)
print("wrong answer: more than 30 queries", file=sys.stderr)
sys.exit(1)
"""

INTERACTIVE: dict[str, Any] = {
    "prepare": {
        "file": {"guess.c": data(GUESS_C), "interactor.py": data(GUESS_INTERACTOR)},
        "execute": [
            {
                "name": "compile",
                "command": ["gcc", "-O2", "-std=c17", "-o", "guess", "guess.c"],
                "memory_limit": 262144,
                "stdout": "compile.txt",
                "stderr": "compile.txt",
            }
        ],
    },
    "tasks": {
        "task": [{"file": {"secret__TASK_ID__.txt": data(f"{n}\n")}} for n in (1, 500000, 999999)],
        "execute": [
            {
                "name": "play",
                "command": ["./guess"],
                "time_limit": 1000,
                "stderr": "play__TASK_ID__.err",
                "meta": "play__TASK_ID__.meta",
                "interactor": {
                    "command": ["python3", "interactor.py", "secret__TASK_ID__.txt"],
                    "time_limit": 5000,
                    "stderr": "interactor__TASK_ID__.txt",
                    "meta": "interactor__TASK_ID__.meta",
                    "private": ["secret__TASK_ID__.txt"],
                },
            }
        ],
    },
}

# name -> (mission, the status of every execute in order: prepare, then each task's)
EXAMPLES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "hello": (HELLO, [""]),
    "c-judge": (C_JUDGE, ["", *["", ""] * len(SUM_TESTS)]),
    "python-grader": (PYTHON_GRADER, ["", ""]),
    "aplusb": (APLUSB, ["", *["", ""] * len(APLUSB_TESTS)]),
    "limits": (LIMITS, ["TLE", "MLE", "RE"]),
    "interactive": (INTERACTIVE, ["", "", "", ""]),
}


def render(mission: dict[str, Any]) -> str:
    return json.dumps(mission, indent=2) + "\n"


def main() -> None:
    for name, (mission, _) in EXAMPLES.items():
        (HERE / f"{name}.json").write_text(render(mission))
        print(f"examples/{name}.json")


if __name__ == "__main__":
    main()
