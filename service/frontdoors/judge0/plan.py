"""The mission a Judge0 submission becomes, and the files it is handed: pure.

One mission per submission, in the language's image, one sandbox:

* the source file (Judge0's name for it) and ``additional_files`` at the top of the box (the
  source wins over a file of the zip with its name, as Judge0's ``unzip -n``), the input in
  ``.j0/stdin``, and ``.j0/o/`` where every output goes;
* for a compiled language, one ``compile`` execute under Judge0's compile limits (its maxima,
  or what the language's compiler needs when that is more);
  it runs the compiler, then packs the box into ``.j0/o/artifact.tar`` for the compile cache, or
  only unpacks ``.j0/artifact.tar`` when the cache handed one in (one exec either way; the
  mission is the same, so a re-run after a restart needs nothing but the store);
* ``number_of_runs`` run executes, each from ``.j0/stdin`` to ``.j0/o/out<i>``/``err<i>``, under
  the submission's CPU time (plus its extra time), real time, memory, process count, file size
  and stack limits.

The door judges the outputs (``verdict``) from the runs' records when each is shorter than
``RECORD_BYTES`` (it is whole there) and no compile is to be kept; else from ``.j0/o``, read back
after the mission.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Any

from orchestrator.mission.model import MIN_STACK_KIB
from service.frontdoors.judge0.languages import Judge0Language
from service.frontdoors.judge0.request import Judge0Config, SubmissionRequest

WORK = ".j0"
STDIN = f"{WORK}/stdin"
OUT_DIR = f"{WORK}/o"
KEEP = f"{OUT_DIR}/.keep"
ARTIFACT_IN = f"{WORK}/artifact.tar"
ARTIFACT_OUT = f"{OUT_DIR}/artifact.tar"
COMPILE_OUT = f"{OUT_DIR}/compile"
COMPILE_OUTPUT_KIB = 64 * 1024  # the compile step writes its output and the packed box
# A run's stdout and stderr are also recorded in its result up to this many bytes (the most an
# execute's record holds): an output shorter than that is whole there, and a submission whose
# outputs all are needs nothing read back from the sandbox after its run.
RECORD_BYTES = 4096
NO_CALLBACK = "http://judge0.invalid/"

# Judge0 strips these from compiler options and program arguments before its bash sees them.
_UNSAFE = re.compile(r"[$&;<>|`]")

# Unpack a cached compile, or compile and pack the box for the cache (never failing the compile
# for a box too large to pack). Arguments after the script are the compiler's argv, never
# interpreted by the shell.
_COMPILE_SCRIPT = (
    f"if [ -e {ARTIFACT_IN} ]; then exec tar -xf {ARTIFACT_IN}; fi; "
    '"$@" || exit; '
    f"tar -cf {ARTIFACT_OUT} --exclude=./{WORK} . 2>/dev/null || rm -f {ARTIFACT_OUT}"
)


def out_name(run: int) -> str:
    return f"{OUT_DIR}/out{run}"


def err_name(run: int, redirect: bool) -> str:
    return out_name(run) if redirect else f"{OUT_DIR}/err{run}"


def split_words(text: str | None) -> list[str]:
    """Options or arguments as Judge0's bash would split them after its sanitising (quotes
    group words; an unbalanced quote falls back to splitting on whitespace)."""
    if not text:
        return []
    clean = _UNSAFE.sub("", text).strip()
    try:
        return shlex.split(clean)
    except ValueError:
        return clean.split()


@dataclass(frozen=True)
class Plan:
    """A submission's mission and its files (without a cached compile)."""

    mission: dict[str, Any]
    inputs: dict[str, bytes]
    compiles: bool
    runs: int


def compile_argv(req: SubmissionRequest, lang: Judge0Language) -> tuple[str, ...] | None:
    """The compiler's argv (options appended as argv items), None when nothing is compiled."""
    if lang.compile is None:
        return None
    if lang.is_project:
        return lang.compile
    return (*lang.compile, *split_words(req.compiler_options))


def _execute(
    name: str, command: list[str], *, time_ms: int, memory_kib: int, output_kib: int
) -> dict[str, Any]:
    return {
        "name": name,
        "command": command,
        "time_limit": time_ms,
        "memory_limit": memory_kib,
        "output_limit": output_kib,
        "record": {"enable": False},
    }


def run_time_ms(req: SubmissionRequest, config: Judge0Config) -> int:
    """The CPU time a run may use before it is killed: the limit plus the extra time (a run
    over the limit but within the extra time is still judged TLE, as isolate judges it). A
    limit of 0 is no limit in Judge0: the largest allowed then."""
    limit = req.cpu_time_limit if req.cpu_time_limit > 0 else config.max_cpu_time_limit
    return max(1, math.ceil((limit + req.cpu_extra_time) * 1000))


def build(
    req: SubmissionRequest,
    lang: Judge0Language,
    config: Judge0Config,
    files: dict[str, bytes],
    *,
    token: str,
    batch: str = "",
    image: str | None = None,
) -> Plan:
    """The mission of a valid submission. ``files`` are its ``additional_files``, already read
    and vetted; ``image`` overrides the language's (tests)."""
    inputs: dict[str, bytes] = dict(files)
    if lang.source_file is not None and req.source_code is not None:
        inputs[lang.source_file] = req.source_code
    inputs[STDIN] = req.stdin or b""
    inputs[KEEP] = b""
    executes: list[dict[str, Any]] = []
    compiler = compile_argv(req, lang)
    if compiler is not None and lang.is_project and "compile" not in files:
        compiler = None  # a project without a compile script is not compiled
    if compiler is not None:
        ex = _execute(
            "compile",
            ["sh", "-c", _COMPILE_SCRIPT, "compile", *compiler],
            time_ms=max(math.ceil(config.max_cpu_time_limit * 1000), lang.compile_time_ms),
            memory_kib=max(config.max_memory_limit, lang.compile_memory_kib),
            output_kib=COMPILE_OUTPUT_KIB,
        )
        ex.update(stdout=COMPILE_OUT, stderr=COMPILE_OUT, meta=f"{WORK}/compile.meta")
        executes.append(ex)
    assert lang.run is not None
    run = (
        list(lang.run) if lang.is_project else [*lang.run, *split_words(req.command_line_arguments)]
    )
    for i in range(req.number_of_runs):
        ex = _execute(
            f"run {i + 1}",
            run,
            time_ms=run_time_ms(req, config),
            memory_kib=req.memory_limit,
            output_kib=max(1, req.max_file_size),
        )
        ex.update(
            # Judge0's other run limits, each one to one onto an execute's.
            wall_time_limit=max(1, math.ceil(req.wall_time_limit * 1000)),
            process_limit=req.max_processes_and_or_threads,
            file_size_limit=req.max_file_size,
            stack_limit=max(MIN_STACK_KIB, req.stack_limit),
            stdin=STDIN,
            stdout=out_name(i),
            stderr=err_name(i, req.redirect_stderr_to_stdout),
            meta=f"{WORK}/run{i}.meta",
            record={
                "stdout": RECORD_BYTES,
                # Redirected, stderr is the stdout file: its record would be the same bytes.
                "stderr": 0 if req.redirect_stderr_to_stdout else RECORD_BYTES,
            },
        )
        executes.append(ex)
    # The payload says which submission this is, and whether it (or its batch) is called back.
    payload: dict[str, Any] = {"token": token}
    if req.callback_url:
        payload["callback_url"] = req.callback_url
    if batch:
        payload["batch"] = batch
    mission: dict[str, Any] = {
        "return": {"url": NO_CALLBACK, "payload": payload},
        "image": image or lang.image,
        "prepare": {"execute": executes},
    }
    return Plan(mission, inputs, compiler is not None, req.number_of_runs)


def batch_callback_mission(batch: str, image: str) -> dict[str, Any]:
    """The mission that carries a batch's callback: it runs nothing; its end is the moment all
    the batch's submissions ended, and its callback goes through the durable delivery."""
    payload = {"batch": batch, "batch_callback": "1"}
    return {"return": {"url": NO_CALLBACK, "payload": payload}, "image": image}


def cached_inputs(plan_inputs: dict[str, bytes], artifact: bytes) -> dict[str, bytes]:
    """The files of a mission whose compile the cache holds: the packed box (it holds the
    source and the additional files) and the input."""
    return {STDIN: plan_inputs[STDIN], KEEP: b"", ARTIFACT_IN: artifact}
