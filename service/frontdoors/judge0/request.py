"""A Judge0 submission request, validated as Judge0 1.13.1 validates it.

``parse_submission`` takes the permitted parameters of one submission (JSON object, form or
query) and gives either a ``SubmissionRequest`` with every default filled in or Judge0's 422
error hash (``{"field": ["message", ...]}``), with Rails' messages, in Rails' order. Values are
coerced as Rails coerces them (``"5"`` is 5, ``"abc"`` is not a number, non-scalars are dropped
by ``permit``). ``Judge0Config`` holds the defaults and maxima (``/config_info`` reports them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.frontdoors.judge0.wire import decode64

PERMITTED = (
    "source_code",
    "language_id",
    "compiler_options",
    "command_line_arguments",
    "number_of_runs",
    "stdin",
    "expected_output",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
)
MAX_OPTION_CHARS = 512
_FALSE = frozenset({"false", "0", "f", "off", "no", "n"})

Errors = dict[str, list[str]]


@dataclass(frozen=True)
class Judge0Config:
    """Defaults and maxima of submissions (Judge0's, unless the operator raised a maximum within
    what the sandboxes allow), and the switches ``/config_info`` reports."""

    cpu_time_limit: float = 5.0
    max_cpu_time_limit: float = 15.0
    cpu_extra_time: float = 1.0
    max_cpu_extra_time: float = 5.0
    wall_time_limit: float = 10.0
    max_wall_time_limit: float = 20.0
    memory_limit: int = 128000
    max_memory_limit: int = 512000
    stack_limit: int = 64000
    max_stack_limit: int = 128000
    max_processes_and_or_threads: int = 60
    max_max_processes_and_or_threads: int = 120
    max_file_size: int = 1024
    max_max_file_size: int = 4096
    number_of_runs: int = 1
    max_number_of_runs: int = 20
    max_submission_batch_size: int = 20
    max_extract_size: int = 10240
    max_queue_size: int = 100
    callbacks_max_tries: int = 8
    callbacks_timeout: float = 30.0
    enable_submission_delete: bool = True

    def config_info(self) -> dict[str, Any]:
        """Judge0's 39 ``/config_info`` keys, in its order, with our values."""
        return {
            "maintenance_mode": False,
            "enable_wait_result": True,
            "enable_compiler_options": True,
            "allowed_languages_for_compile_options": [],
            "enable_command_line_arguments": True,
            "enable_submission_delete": self.enable_submission_delete,
            "enable_callbacks": True,
            "callbacks_max_tries": self.callbacks_max_tries,
            "callbacks_timeout": float(self.callbacks_timeout),
            "enable_additional_files": True,
            "max_queue_size": self.max_queue_size,
            "cpu_time_limit": float(self.cpu_time_limit),
            "max_cpu_time_limit": float(self.max_cpu_time_limit),
            "cpu_extra_time": float(self.cpu_extra_time),
            "max_cpu_extra_time": float(self.max_cpu_extra_time),
            "wall_time_limit": float(self.wall_time_limit),
            "max_wall_time_limit": float(self.max_wall_time_limit),
            "memory_limit": self.memory_limit,
            "max_memory_limit": self.max_memory_limit,
            "stack_limit": self.stack_limit,
            "max_stack_limit": self.max_stack_limit,
            "max_processes_and_or_threads": self.max_processes_and_or_threads,
            "max_max_processes_and_or_threads": self.max_max_processes_and_or_threads,
            # Limits apply to a submission's processes together (a cgroup), never per process.
            "enable_per_process_and_thread_time_limit": False,
            "allow_enable_per_process_and_thread_time_limit": False,
            "enable_per_process_and_thread_memory_limit": False,
            "allow_enable_per_process_and_thread_memory_limit": False,
            "max_file_size": self.max_file_size,
            "max_max_file_size": self.max_max_file_size,
            "number_of_runs": self.number_of_runs,
            "max_number_of_runs": self.max_number_of_runs,
            "redirect_stderr_to_stdout": False,
            "max_extract_size": self.max_extract_size,
            "enable_batched_submissions": True,
            "max_submission_batch_size": self.max_submission_batch_size,
            # Answers are read from the database every time: nothing is cached.
            "submission_cache_duration": 0.0,
            "use_docs_as_homepage": False,
            # No sandbox ever reaches a network.
            "allow_enable_network": False,
            "enable_network": False,
        }


@dataclass(frozen=True)
class LanguageFacts:
    """What validation needs to know of a language id."""

    is_archived: bool
    is_project: bool  # the multi-file program: additional_files instead of source_code
    compiled: bool


@dataclass(frozen=True)
class SubmissionRequest:
    """One valid submission with every default filled in (Judge0's units: s, KB)."""

    language_id: int
    source_code: bytes | None
    stdin: bytes | None
    expected_output: bytes | None
    compiler_options: str | None
    command_line_arguments: str | None
    number_of_runs: int
    cpu_time_limit: float
    cpu_extra_time: float
    wall_time_limit: float
    memory_limit: int
    stack_limit: int
    max_processes_and_or_threads: int
    enable_per_process_and_thread_time_limit: bool
    enable_per_process_and_thread_memory_limit: bool
    max_file_size: int
    redirect_stderr_to_stdout: bool
    callback_url: str | None
    additional_files: bytes | None
    enable_network: bool


def permitted(params: Mapping[str, Any]) -> dict[str, Any]:
    """Rails' ``permit``: the known keys with scalar values (lists and objects are dropped)."""
    return {
        key: params[key]
        for key in PERMITTED
        if key in params and (params[key] is None or isinstance(params[key], str | int | float))
    }


def _blank(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str | bytes) and not value.strip())


def _number(value: Any) -> float | None:
    """A numeric parameter's value as Rails' numericality reads it; None: not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _bool(value: Any) -> bool | None:
    """Rails' boolean cast: None or ``""`` is nil, a false-ish word is false, anything else true."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() not in _FALSE


def _text(value: Any, base64_encoded: bool) -> bytes | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if base64_encoded:
        return decode64(text)
    return text.encode("utf-8", "replace")


def _bound(limit: float) -> str:
    """A bound in a message as Ruby prints it (``15.0`` for a float, ``512000`` for an int)."""
    return repr(float(limit)) if isinstance(limit, float) else str(limit)


def parse_submission(
    params: Mapping[str, Any],
    *,
    base64_encoded: bool,
    config: Judge0Config,
    language: Callable[[int], LanguageFacts | None],
) -> SubmissionRequest | Errors:
    """Validate one submission's parameters; returns the request or Judge0's error hash.

    ``language(id)`` tells what is known of a language id (None: no such language).
    """
    p = permitted(params)
    errors: Errors = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    # language_id is an integer column: "71" and 71.0 are 71, anything else is nil.
    raw_language = p.get("language_id")
    language_id: int | None = None
    number = _number(raw_language)
    if number is not None:
        language_id = int(number)
    facts = language(language_id) if language_id is not None else None
    is_project = facts.is_project if facts is not None else False

    source = _text(p.get("source_code"), base64_encoded)
    additional = p.get("additional_files")
    additional_bytes = decode64(str(additional)) if additional is not None else None

    if is_project:
        if not _blank(source):
            add("source_code", "must be blank")
        if not additional_bytes:
            add("additional_files", "can't be blank")
    elif source is None or not source.strip():
        add("source_code", "can't be blank")
    if language_id is None:
        add("language_id", "can't be blank")

    values: dict[str, float] = {}

    def numeric(
        field: str, default: float, low: float, high: float, *, strict_low: bool = False
    ) -> None:
        raw = p.get(field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[field] = default
            return
        value = _number(raw)
        if value is None:
            add(field, "is not a number")
            return
        if strict_low and value <= low:
            add(field, f"must be greater than {_bound(low)}")
        elif not strict_low and value < low:
            add(field, f"must be greater than or equal to {_bound(low)}")
        elif value > high:
            add(field, f"must be less than or equal to {_bound(high)}")
        values[field] = value

    c = config
    numeric("number_of_runs", c.number_of_runs, 0, c.max_number_of_runs, strict_low=True)
    numeric("cpu_time_limit", c.cpu_time_limit, 0, float(c.max_cpu_time_limit))
    numeric("cpu_extra_time", c.cpu_extra_time, 0, float(c.max_cpu_extra_time))
    numeric("wall_time_limit", c.wall_time_limit, 1, float(c.max_wall_time_limit))
    numeric("memory_limit", c.memory_limit, 2048, c.max_memory_limit)
    numeric("stack_limit", c.stack_limit, 0, c.max_stack_limit)
    numeric(
        "max_processes_and_or_threads",
        c.max_processes_and_or_threads,
        0,
        c.max_max_processes_and_or_threads,
        strict_low=True,
    )
    per_time = _bool(p.get("enable_per_process_and_thread_time_limit")) or False
    per_memory = _bool(p.get("enable_per_process_and_thread_memory_limit")) or False
    if per_time:
        add("enable_per_process_and_thread_time_limit", "this option cannot be enabled")
    if per_memory:
        add("enable_per_process_and_thread_memory_limit", "this option cannot be enabled")
    numeric("max_file_size", c.max_file_size, 0, c.max_max_file_size)

    options = _option(p.get("compiler_options"))
    arguments = _option(p.get("command_line_arguments"))
    if options is not None and len(options) > MAX_OPTION_CHARS:
        add("compiler_options", f"is too long (maximum is {MAX_OPTION_CHARS} characters)")
    if arguments is not None and len(arguments) > MAX_OPTION_CHARS:
        add("command_line_arguments", f"is too long (maximum is {MAX_OPTION_CHARS} characters)")

    if facts is None:
        shown = "" if language_id is None else str(language_id)
        add("language_id", f"language with id {shown} doesn't exist")
    elif facts.is_archived:
        add("language_id", f"language with id {language_id} is archived and cannot be used anymore")
    if options and options.strip() and facts is not None and not facts.compiled:
        add("compiler_options", "setting compiler options is only allowed for compiled languages")
    if _bool(p.get("enable_network")):
        add("enable_network", "enabling network is not allowed")

    callback = p.get("callback_url")
    callback_url = None if _blank(callback) else str(callback)

    if errors:
        return errors
    assert language_id is not None
    return SubmissionRequest(
        language_id=language_id,
        source_code=None if is_project else source,
        stdin=_text(p.get("stdin"), base64_encoded),
        expected_output=_text(p.get("expected_output"), base64_encoded),
        compiler_options=options,
        command_line_arguments=arguments,
        number_of_runs=int(values["number_of_runs"]),
        cpu_time_limit=values["cpu_time_limit"],
        cpu_extra_time=values["cpu_extra_time"],
        wall_time_limit=values["wall_time_limit"],
        memory_limit=int(values["memory_limit"]),
        stack_limit=int(values["stack_limit"]),
        max_processes_and_or_threads=int(values["max_processes_and_or_threads"]),
        enable_per_process_and_thread_time_limit=False,
        enable_per_process_and_thread_memory_limit=False,
        max_file_size=int(values["max_file_size"]),
        redirect_stderr_to_stdout=bool(_bool(p.get("redirect_stderr_to_stdout"))),
        callback_url=callback_url,
        additional_files=additional_bytes or None,
        enable_network=False,
    )


def _option(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
