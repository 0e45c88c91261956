"""Piston's execute body: Piston's messages in Piston's order, limits, files, names."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from service.frontdoors.piston.errors import PistonError
from service.frontdoors.piston.request import parse_execute
from tests.piston.fixtures import RUNTIMES, body, settings


def refused(doc: object, **config: Any) -> str:
    with pytest.raises(PistonError) as caught:
        parse_execute(doc, RUNTIMES, settings(**config))
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "language is required as a string"),
        ([], "language is required as a string"),
        (body(language=3), "language is required as a string"),
        (body(language=""), "language is required as a string"),
        (body(version=None), "version is required as a string"),
        (body(version=3.11), "version is required as a string"),
        (body(files=None), "files is required as an array"),
        (body(files={"content": "x"}), "files is required as an array"),
        (body(files=[{"content": "x"}, {"name": "a"}]), "files[1].content is required as a string"),
        (body(files=["print(1)"]), "files[0].content is required as a string"),
        (body(language="cobol"), "cobol-3.11.2 runtime is unknown"),
        (body(version="2.x"), "python-2.x runtime is unknown"),
        (body(files=[]), "files must include at least one utf8 encoded file"),
        (
            body(files=[{"content": "aGk=", "encoding": "base64"}]),
            "files must include at least one utf8 encoded file",
        ),
    ],
)
def test_pistons_messages(doc: object, message: str) -> None:
    assert refused(doc) == message


def test_the_language_comes_before_the_files() -> None:
    # Piston checks in order: a body wrong everywhere gets the first message only.
    assert refused({"version": 1, "files": 2}) == "language is required as a string"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("run_timeout", "3000", "If specified, run_timeout must be a number"),
        ("run_timeout", True, "If specified, run_timeout must be a number"),
        ("run_timeout", [], "If specified, run_timeout must be a number"),
        ("run_timeout", 3001, "run_timeout cannot exceed the configured limit of 3000"),
        ("compile_timeout", 10001, "compile_timeout cannot exceed the configured limit of 10000"),
        ("run_cpu_time", 5000, "run_cpu_time cannot exceed the configured limit of 3000"),
        (
            "run_memory_limit",
            1 << 40,
            f"run_memory_limit cannot exceed the configured limit of {256 << 20}",
        ),
        ("run_timeout", -5, "run_timeout must be non-negative"),
    ],
)
def test_stage_limits_are_checked(field: str, value: object, message: str) -> None:
    assert refused(body(**{field: value})) == message


def test_limits_are_checked_memory_first_compile_first() -> None:
    doc = body(run_timeout=10**9, compile_memory_limit=10**12, run_memory_limit=10**12)
    assert refused(doc).startswith("compile_memory_limit cannot exceed")


@pytest.mark.parametrize("value", [None, 0, False, "", -1])
def test_falsy_and_minus_one_mean_the_configured_limit(value: object) -> None:
    job = parse_execute(body(run_timeout=value, run_memory_limit=value), RUNTIMES, settings())
    assert job.run.timeout_ms == 3000
    assert job.run.memory_bytes == 256 << 20


def test_limits_under_the_configured_ones_are_kept() -> None:
    job = parse_execute(
        body(run_timeout=1500, run_cpu_time=999.5, compile_memory_limit=100_000_000),
        RUNTIMES,
        settings(),
    )
    assert (job.run.timeout_ms, job.run.cpu_time_ms) == (1500, 1000)
    assert job.compile.memory_bytes == 100_000_000
    assert job.compile.timeout_ms == 10_000


def test_configured_maxima_come_from_the_settings() -> None:
    doc = body(run_timeout=5000)
    assert refused(doc, run_timeout=4000) == (
        "run_timeout cannot exceed the configured limit of 4000"
    )
    assert parse_execute(doc, RUNTIMES, settings(run_timeout=6000)).run.timeout_ms == 5000


@pytest.mark.parametrize(
    ("selector", "ran"),
    [
        ("*", "3.11.2"),
        ("3.x", "3.11.2"),
        ("3.11.x", "3.11.2"),
        ("3.11.2", "3.11.2"),
        ("3", "3.11.2"),
    ],
)
def test_version_ranges(selector: str, ran: str) -> None:
    assert parse_execute(body(version=selector), RUNTIMES, settings()).runtime.version == ran


def test_aliases_name_the_language() -> None:
    job = parse_execute(body(language="py3", version="*"), RUNTIMES, settings())
    assert job.runtime.language == "python"


def test_an_exact_version_we_lack_runs_on_the_same_major() -> None:
    # Clients pin the public instance's 3.10.0.
    assert parse_execute(body(version="3.10.0"), RUNTIMES, settings()).runtime.version == "3.11.2"
    assert refused(body(version="3.10.0"), strict_versions=True) == (
        "python-3.10.0 runtime is unknown"
    )
    assert refused(body(version="2.7.18")) == "python-2.7.18 runtime is unknown"


def test_files_in_every_encoding() -> None:
    data = bytes(range(256))
    job = parse_execute(
        body(
            files=[
                {"name": "main.py", "content": "print('é')"},
                {"name": "b.bin", "content": base64.b64encode(data).decode(), "encoding": "base64"},
                {"name": "h.bin", "content": data.hex(), "encoding": "hex"},
                {
                    "name": "u.bin",
                    "content": base64.urlsafe_b64encode(data).decode().rstrip("="),
                    "encoding": "base64",
                },
                {"name": "x.txt", "content": "plain", "encoding": "latin1"},
            ]
        ),
        RUNTIMES,
        settings(),
    )
    got = {f.name: f.data for f in job.files}
    assert got == {
        "main.py": "print('é')".encode(),
        "b.bin": data,
        "h.bin": data,
        "u.bin": data,
        "x.txt": b"plain",  # an unknown encoding is utf8, as in Piston
    }


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ({"content": "not base64!", "encoding": "base64"}, "files[1].content is not valid base64"),
        ({"content": "abc", "encoding": "hex"}, "files[1].content is not valid hex"),
        ({"content": "zz", "encoding": "hex"}, "files[1].content is not valid hex"),
        ({"content": "\ud800"}, "files[1].content is not valid UTF-8 text"),
        ({"name": 5, "content": ""}, "files[1].name must be a string"),
    ],
)
def test_bad_encodings_are_400(file: dict[str, Any], message: str) -> None:
    assert refused(body(files=[{"content": "print(1)"}, file])) == message


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../x", 'File path "../x" tries to escape parent directory'),
        ("a/../../x", 'File path "a/../../x" tries to escape parent directory'),
        ("/etc/passwd", 'File path "/etc/passwd" tries to escape parent directory'),
        ("a\nb", "files[1].name: 'a\\nb' contains a control character"),
        ("dir/", 'File path "dir/" does not name a file'),
        (".", "files[1].name: '.' names the sandbox itself, not a path inside it"),
        (
            ".piston/stdin",
            'File path ".piston/stdin" is in the directory .piston, kept for the judge',
        ),
        ("a" * 300, f'File path "{"a" * 80}..." is too long'),
    ],
)
def test_names_that_escape_or_clash_are_400(name: str, message: str) -> None:
    assert refused(body(files=[{"content": "print(1)"}, {"name": name, "content": ""}])) == message


def test_names_given_twice_or_inside_a_file_are_400() -> None:
    two = [{"content": "1"}, {"name": "a/b", "content": ""}, {"name": "a//b", "content": ""}]
    assert refused(body(files=two)) == 'File path "a/b" is given twice'
    nested = [{"content": "1"}, {"name": "a", "content": ""}, {"name": "a/b", "content": ""}]
    assert refused(body(files=nested)) == 'File path "a/b" is inside "a", which is a file'


def test_huge_files_are_400_before_decoding() -> None:
    big = "x" * 2000
    assert refused(body(files=[{"content": big}]), max_file_size=1024) == (
        "files[0] is larger than the configured limit of 1024 bytes"
    )
    huge = "x" * (5 * 1024 + 100)
    assert refused(body(files=[{"content": huge}]), max_file_size=1024) == (
        "files[0] is larger than the configured limit of 1024 bytes"
    )
    many = [{"content": ""}] * 4
    assert refused(body(files=many), max_files=3) == (
        "files cannot hold more than the configured limit of 3"
    )


def test_the_entry_is_the_first_utf8_file_whatever_its_name() -> None:
    c = {"language": "c", "version": "*"}
    job = parse_execute(
        body(
            **c,
            files=[
                {"name": "data.bin", "content": "AAE=", "encoding": "base64"},
                {"content": "int main(){}"},
                {"name": "util.h", "content": "#define X 1"},
            ],
        ),
        RUNTIMES,
        settings(),
    )
    assert [f.name for f in job.files] == ["file1.code", "data.bin", "util.h"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stdin": 5}, "If specified, stdin must be a string"),
        ({"args": "1 2"}, "If specified, args must be an array of strings"),
        ({"args": ["1", 2]}, "args[1] must be a string"),
        ({"args": ["a\0b"]}, "args[0] must not contain a NUL character"),
    ],
)
def test_stdin_and_args(changes: dict[str, Any], message: str) -> None:
    assert refused(body(**changes)) == message


def test_stdin_and_args_are_kept() -> None:
    job = parse_execute(body(stdin="1 2", args=["x", "y z"]), RUNTIMES, settings())
    assert (job.stdin, job.args) == ("1 2", ("x", "y z"))
