"""Judge0 CE 1.13.1's wire format, as pure functions: statuses, base64 as Ruby writes it,
decimals, dates, the ``fields`` parameter, pagination and the informational documents.

Nothing here does I/O; every rule is the one Judge0 1.13.1 follows (read from its controllers,
serializers and ``Base64Service``), so that its own SDK and existing clients read our answers
as they read Judge0's.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

API_VERSION = "1.13.1"
"""The Judge0 API version spoken: the SDK picks its language aliases by this key."""

STATUSES: tuple[tuple[int, str], ...] = (
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
)
STATUS_NAMES = dict(STATUSES)
IN_QUEUE, PROCESSING, ACCEPTED, WRONG_ANSWER, TIME_LIMIT_EXCEEDED, COMPILATION_ERROR = range(1, 7)
SIGSEGV, SIGXFSZ, SIGFPE, SIGABRT, NZEC, OTHER, INTERNAL_ERROR = range(7, 14)

# Judge0's submissions table, in column order (``id`` left out), then the two computed fields:
# the fields a client may ask for, and the order ``fields=*`` answers in.
COLUMNS: tuple[str, ...] = (
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
)
AVAILABLE_FIELDS: tuple[str, ...] = (*COLUMNS, "status", "language")
DEFAULT_FIELDS: tuple[str, ...] = (
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
)
# Text columns: base64 in answers when asked; plain text must then be UTF-8 (see ``text_field``).
TEXT_FIELDS = frozenset(
    {"source_code", "stdin", "expected_output", "stdout", "stderr", "compile_output"}
)
DECIMAL_FIELDS = frozenset(
    {"time", "wall_time", "cpu_time_limit", "cpu_extra_time", "wall_time_limit"}
)

UTF8_ERROR = (
    "some attributes for this submission cannot be converted to UTF-8, "
    "use base64_encoded=true query parameter"
)
UTF8_ERROR_MANY = (
    "some attributes for one or more submissions cannot be converted to UTF-8, "
    "use base64_encoded=true query parameter"
)


class NotUtf8(ValueError):
    """A text field is not valid UTF-8 and base64 was not asked for (Judge0's 400)."""


# -- base64 as Ruby's Base64 module does it ------------------------------------------------------

_B64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")


def encode64(data: bytes) -> str:
    """Ruby's ``Base64.encode64``: standard base64 with a newline after every 60 characters and
    at the end (``""`` for no bytes). Judge0 answers base64 fields this way."""
    if not data:
        return ""
    text = base64.b64encode(data).decode("ascii")
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def decode64(text: str | bytes) -> bytes:
    """Ruby's ``Base64.decode64``: lenient. Characters outside the alphabet are skipped, input
    stops at the first ``=``, and a short last group gives the bytes it holds. Never raises."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    raw = raw.split(b"=", 1)[0]
    clean = _B64_ALPHABET.sub(b"", raw)
    usable = len(clean) - len(clean) % 4
    tail = clean[usable:]
    out = base64.b64decode(clean[:usable]) if usable else b""
    if len(tail) >= 2:
        try:
            out += base64.b64decode(tail + b"=" * (4 - len(tail)))
        except binascii.Error:  # pragma: no cover - the alphabet is clean, padding added
            pass
    return out


def text_field(value: bytes | None, *, base64_encoded: bool) -> str | None:
    """A stored text column as Judge0 answers it: ``encode64`` when base64 is asked, else the
    text itself. Raises ``NotUtf8`` when it is not valid UTF-8 (Judge0 refuses any byte above
    0x7f there; we refuse only what is not UTF-8, a documented difference)."""
    if value is None:
        return None
    if base64_encoded:
        return encode64(value)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise NotUtf8(UTF8_ERROR) from None


# -- numbers and dates ---------------------------------------------------------------------------


def decimal(value: float | None) -> str | None:
    """A decimal column as Rails writes it in JSON: a string, trailing zeros dropped but one
    digit after the point kept (``5`` -> ``"5.0"``, ``0.0123`` -> ``"0.0123"``)."""
    if value is None:
        return None
    if not math.isfinite(value):
        return None
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def iso_date(epoch_s: float | None) -> str | None:
    """A time as Rails writes it in JSON: UTC, milliseconds, ``Z``
    (``2024-04-08T11:42:51.856Z``)."""
    if epoch_s is None:
        return None
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_token() -> str:
    """A submission token: a random UUID (version 4), as Judge0's ``SecureRandom.uuid``."""
    return str(uuid.uuid4())


def ruby_to_i(text: str | None) -> int | None:
    """Ruby's ``String#to_i`` (leading integer, else 0); None for an absent parameter."""
    if text is None:
        return None
    match = re.match(r"\s*([+-]?\d+)", text.replace("_", ""))
    return int(match[1]) if match else 0


# -- the ``fields`` parameter --------------------------------------------------------------------


@dataclass(frozen=True)
class Fields:
    """The fields an answer holds, in order, and the names that are not fields."""

    requested: tuple[str, ...]
    invalid: tuple[str, ...]

    @property
    def error(self) -> str | None:
        """Judge0's 400 message for unknown fields, None when all are known."""
        if not self.invalid:
            return None
        return f"invalid fields: [{', '.join(self.invalid)}]"


def parse_fields(raw: str | None) -> Fields:
    """``fields=a,b`` as Judge0 reads it: ``*`` is every field; unknown names are collected for
    the 400; nothing valid asked means the default eight."""
    names = [name for name in (raw or "").split(",") if name != ""]
    invalid = tuple(n for n in names if n != "*" and n not in AVAILABLE_FIELDS)
    if "*" in names:
        return Fields(AVAILABLE_FIELDS, invalid)
    valid = tuple(dict.fromkeys(n for n in names if n in AVAILABLE_FIELDS))
    return Fields(valid or DEFAULT_FIELDS, invalid)


# -- documents -----------------------------------------------------------------------------------


def status_doc(status_id: int) -> dict[str, Any]:
    return {"id": status_id, "description": STATUS_NAMES[status_id]}


def statuses_doc() -> list[dict[str, Any]]:
    return [status_doc(i) for i, _ in STATUSES]


def pagination(page: int, per_page: int, total: int) -> dict[str, Any]:
    """will_paginate's numbers as Judge0's ``meta``."""
    pages = math.ceil(total / per_page) if per_page > 0 else 0
    return {
        "current_page": page,
        "next_page": page + 1 if page < pages else None,
        "prev_page": page - 1 if page > 1 else None,
        "total_pages": pages,
        "total_count": total,
    }


def about_doc(homepage: str, source_code: str, maintainer: str) -> dict[str, Any]:
    return {
        "version": API_VERSION,
        "homepage": homepage,
        "source_code": source_code,
        "maintainer": maintainer,
    }


def select(doc: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The ``fields`` of a full document, in the order asked."""
    return {name: doc[name] for name in fields}
