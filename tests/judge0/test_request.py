"""Submission validation with Judge0's 422 messages, defaults and maxima (no engine)."""

from __future__ import annotations

from typing import Any

import judge0.base_types
import pytest

from service.frontdoors.judge0.request import (
    Judge0Config,
    LanguageFacts,
    SubmissionRequest,
    parse_submission,
)

PYTHON = LanguageFacts(is_archived=False, is_project=False, compiled=False)
C = LanguageFacts(is_archived=False, is_project=False, compiled=True)
PROJECT = LanguageFacts(is_archived=False, is_project=True, compiled=True)
LANGS = {71: PYTHON, 50: C, 89: PROJECT}


def parse(params: dict[str, Any], base64_encoded: bool = False) -> Any:
    return parse_submission(
        params, base64_encoded=base64_encoded, config=Judge0Config(), language=LANGS.get
    )


def test_defaults_are_judge0s() -> None:
    req = parse({"source_code": "print(1)", "language_id": 71})
    assert isinstance(req, SubmissionRequest)
    assert (req.cpu_time_limit, req.cpu_extra_time, req.wall_time_limit) == (5.0, 1.0, 10.0)
    assert (req.memory_limit, req.stack_limit, req.max_file_size) == (128000, 64000, 1024)
    assert (req.max_processes_and_or_threads, req.number_of_runs) == (60, 1)
    assert req.redirect_stderr_to_stdout is False
    assert req.enable_network is False
    assert req.source_code == b"print(1)"
    assert req.stdin is None


def test_strings_are_numbers_as_rails_casts_them() -> None:
    req = parse(
        {
            "source_code": "x",
            "language_id": "71",
            "cpu_time_limit": "2.5",
            "memory_limit": "65536",
            "redirect_stderr_to_stdout": "true",
        }
    )
    assert isinstance(req, SubmissionRequest)
    assert (req.language_id, req.cpu_time_limit, req.memory_limit) == (71, 2.5, 65536)
    assert req.redirect_stderr_to_stdout is True


def test_base64_requests_are_decoded_leniently() -> None:
    req = parse({"source_code": "cHJp\nbnQoMSk=", "stdin": "MQ", "language_id": 71}, True)
    assert isinstance(req, SubmissionRequest)
    assert (req.source_code, req.stdin) == (b"print(1)", b"1")


def test_blank_and_missing() -> None:
    assert parse({}) == {
        "source_code": ["can't be blank"],
        "language_id": ["can't be blank", "language with id  doesn't exist"],
    }
    assert parse({"source_code": "   ", "language_id": 150000}) == {
        "source_code": ["can't be blank"],
        "language_id": ["language with id 150000 doesn't exist"],
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpu_time_limit", 16, "must be less than or equal to 15.0"),
        ("cpu_time_limit", -1, "must be greater than or equal to 0"),
        ("cpu_extra_time", 6, "must be less than or equal to 5.0"),
        ("wall_time_limit", 0.5, "must be greater than or equal to 1"),
        ("wall_time_limit", 21, "must be less than or equal to 20.0"),
        ("memory_limit", 2047, "must be greater than or equal to 2048"),
        ("memory_limit", 512001, "must be less than or equal to 512000"),
        ("stack_limit", 128001, "must be less than or equal to 128000"),
        ("max_processes_and_or_threads", 0, "must be greater than 0"),
        ("max_processes_and_or_threads", 121, "must be less than or equal to 120"),
        ("max_file_size", 4097, "must be less than or equal to 4096"),
        ("number_of_runs", 0, "must be greater than 0"),
        ("number_of_runs", 21, "must be less than or equal to 20"),
        ("memory_limit", "lots", "is not a number"),
        ("cpu_time_limit", True, "is not a number"),
        ("enable_network", True, "enabling network is not allowed"),
        ("enable_per_process_and_thread_time_limit", True, "this option cannot be enabled"),
        ("enable_per_process_and_thread_memory_limit", "true", "this option cannot be enabled"),
        ("command_line_arguments", "x" * 513, "is too long (maximum is 512 characters)"),
        (
            "compiler_options",
            "-O2",
            "setting compiler options is only allowed for compiled languages",
        ),
    ],
)
def test_field_errors(field: str, value: Any, message: str) -> None:
    assert parse({"source_code": "x", "language_id": 71, field: value}) == {field: [message]}


def test_both_messages_of_one_field_in_rails_order() -> None:
    assert parse({"source_code": "x", "language_id": 71, "compiler_options": "x" * 513}) == {
        "compiler_options": [
            "is too long (maximum is 512 characters)",
            "setting compiler options is only allowed for compiled languages",
        ]
    }


def test_maxima_follow_the_config() -> None:
    config = Judge0Config(max_cpu_time_limit=30.0, max_memory_limit=1024000)
    got = parse_submission(
        {"source_code": "x", "language_id": 71, "cpu_time_limit": 30, "memory_limit": 1024000},
        base64_encoded=False,
        config=config,
        language=LANGS.get,
    )
    assert isinstance(got, SubmissionRequest)


def test_multi_file_program_wants_files_not_source() -> None:
    assert parse({"language_id": 89}) == {"additional_files": ["can't be blank"]}
    assert parse({"language_id": 89, "source_code": "x", "additional_files": "UEsFBg=="}) == {
        "source_code": ["must be blank"]
    }
    req = parse({"language_id": 89, "source_code": "", "additional_files": "UEsFBg=="})
    assert isinstance(req, SubmissionRequest)
    assert req.source_code is None


def test_non_scalars_are_dropped_as_rails_permit_drops_them() -> None:
    assert parse({"source_code": ["x"], "language_id": 71}) == {"source_code": ["can't be blank"]}


def test_config_info_has_the_39_keys_the_sdk_validates() -> None:
    info = Judge0Config().config_info()
    assert len(info) == 39
    judge0.base_types.Config(**info)  # the SDK's own model accepts it
    assert set(info) == set(judge0.base_types.Config.model_fields)
    assert info["allow_enable_network"] is False
    assert info["enable_network"] is False
