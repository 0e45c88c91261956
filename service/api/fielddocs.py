"""Words for the mission schema's fields in the OpenAPI document (types, ranges and defaults come
from the models; a test checks that every entry names a field that exists). The prose is
docs/missions.md."""

from __future__ import annotations

FIELD_DOCS: dict[str, dict[str, str]] = {
    "Mission": {
        "return": "Where the result is POSTed; leave it out to poll, wait or follow events.",
        "prepare": "Files fetched, then executes run, first.",
        "tasks": "The tasks; each runs tasks.execute after its macros are applied.",
        "final": "Files fetched, then executes run, last.",
        "image": "The sandbox image (GET /api/images); the server's default when absent.",
        "language": "A language of GET /api/languages (its id or an alias): the sandbox image "
        "is the one providing it (set into `image`); with `image` too, that image must "
        "declare the language.",
        "runtime": "The container runtime of every sandbox, e.g. runsc (gVisor); one of "
        "JUDGE_RUNTIMES (GET /api/runtimes), the engine's default when absent.",
        "tick": "Accepted and echoed; no effect.",
    },
    "Return": {
        "url": "An absolute http(s) URL the callback is POSTed to.",
        "payload": "Extra callback fields, one level of scalars; id, mission, mission_result "
        "are reserved.",
        "format": "form: application/x-www-form-urlencoded; json: one JSON object.",
    },
    "Stage": {
        "file": "File name (relative path) -> URL: http(s)://, data: or blob:<hash>.",
        "execute": "Run in order in the mission's sandbox.",
    },
    "Task": {
        "file": "File name (macros apply) -> URL.",
        "macro": "Key -> replacement, applied to every string of tasks.execute and to the file "
        "names; __TASK_ID__ is the task's index and reserved.",
    },
    "Tasks": {
        "task": "The tasks, run in order.",
        "execute": "Run once per task.",
        "parallel": "Extension: up to this many tasks at once (1: in order); every execute must "
        "be scoped; at most the server's JUDGE_MAX_TASK_PARALLEL. Results stay in task order.",
    },
    "Execute": {
        "name": "A label echoed in the result and the events.",
        "command": "Program and arguments, run without a shell. Required unless `compare` is "
        "given.",
        "memory_limit": "KiB of memory; over it: MLE.",
        "time_limit": "ms of CPU time (real time capped at 1.5x unless wall_time_limit); "
        "over it: TLE.",
        "output_limit": "KiB, the largest file the command may write; over it: OLE.",
        "meta": "File the execute's meta JSON is written to afterwards.",
        "stdin": "File read as standard input; empty: no input.",
        "stdout": "File standard output goes to; empty: discarded.",
        "stderr": "File standard error goes to; empty: discarded.",
        "record": "How much of stdout/stderr to report back.",
        "scope": "Run in a fresh sandbox with imports and exports.",
        "interactor": "A program run beside this one, wired by pipes (its stdout is this "
        "execute's stdin and the other way round); stdin and stdout must then be empty. "
        "See docs/interactive.md.",
        "wall_time_limit": "Extension: ms of real time; absent: 1.5 x time_limit. Over it: TLE "
        "(message 'real time limit exceeded').",
        "process_limit": "Extension: processes and threads alive at once; absent: no count "
        "(the sandbox's own fence). Over it: RE 'process limit exceeded (N)', signal 9.",
        "file_size_limit": "Extension: KiB, the largest file the command may write when below "
        "output_limit; over it: SIGXFSZ, OLE 'file size limit exceeded (N KiB)', signal 25.",
        "stack_limit": "Extension: KiB of stack; absent: memory_limit, at least 8 MiB. A "
        "stack overflow is RE, signal 11 (SIGSEGV).",
        "merged": "Extension: a file that gets stdout and stderr together, in the order the "
        "command wrote them (each still goes to its own file too); not with an interactor. "
        "Reported as record.merged. See docs/missions.md.",
        "compare": "Extension, instead of `command`: compare two files of the mission's "
        "sandbox byte for byte, no process run. Equal: status ''; different: RE, exit-code 1; "
        "a file missing, a link or not a regular file: RE, exit-code 2. Not with stdin, "
        "stdout, stderr, scope or interactor.",
    },
    "Compare": {
        "output": "The file the program wrote (relative path; macros apply).",
        "answer": "The file it must equal, byte for byte.",
    },
    "Interactor": {
        "command": "Program and arguments of the interactor, run as another user.",
        "memory_limit": "KiB of memory; over it: MLE (its own meta).",
        "time_limit": "ms of CPU time; its real time (1.5x) counts from the program's end.",
        "output_limit": "KiB, the largest file it may write; over it: OLE.",
        "meta": "File the interactor's meta JSON is written to afterwards.",
        "stderr": "File its standard error goes to; empty: discarded.",
        "private": "Files only the interactor may read (the program gets EACCES).",
    },
    "Record": {
        "enable": "Report the output at all.",
        "stdout": "Leading bytes of the stdout file to report (base64).",
        "stderr": "Leading bytes of the stderr file to report (base64).",
        "merged": "Extension: leading bytes of the merged file to report (base64); absent: "
        "1024. Up to 8192.",
    },
    "Scope": {
        "enable": "Run this execute in a new, empty sandbox.",
        "import": "Paths copied in, arriving under their last component.",
        "export": "Paths copied back to the same relative path afterwards.",
    },
}
