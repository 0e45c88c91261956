"""Judge0 1.13.1's wire rules, unit by unit (no engine)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

import pytest

from service.frontdoors.judge0 import wire


def test_encode64_is_rubys_with_a_newline_every_60_characters_and_at_the_end() -> None:
    assert wire.encode64(b"") == ""
    assert wire.encode64(b"hello\n") == "aGVsbG8K\n"
    data = bytes(range(256))
    encoded = wire.encode64(data)
    lines = encoded.split("\n")
    assert lines[-1] == ""
    assert all(len(line) == 60 for line in lines[:-2])
    assert 0 < len(lines[-2]) <= 60
    assert base64.b64decode(encoded.replace("\n", "")) == data


def test_decode64_is_lenient_like_ruby() -> None:
    assert wire.decode64("aGVsbG8K") == b"hello\n"
    assert wire.decode64("aGVs\nbG8K\n") == b"hello\n"  # line breaks skipped
    assert wire.decode64("aGVsbG8") == b"hello"  # no padding: the bytes it holds
    assert wire.decode64("aGVsbG8=junk") == b"hello"  # stops at '='
    assert wire.decode64("a!G@V#s$") == b"hel"  # characters outside the alphabet skipped
    assert wire.decode64("") == b""
    assert wire.decode64("a") == b""


def test_text_fields_refuse_invalid_utf8_without_base64_only() -> None:
    assert wire.text_field(None, base64_encoded=False) is None
    assert wire.text_field("héllo".encode(), base64_encoded=False) == "héllo"
    with pytest.raises(wire.NotUtf8) as e:
        wire.text_field(b"\xff\xfe", base64_encoded=False)
    assert str(e.value) == wire.UTF8_ERROR
    assert wire.text_field(b"\xff\xfe", base64_encoded=True) == "//4=\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5, "5.0"),
        (5.0, "5.0"),
        (0, "0.0"),
        (0.002, "0.002"),
        (0.01, "0.01"),
        (1.5, "1.5"),
        (0.0023333333, "0.002333"),
        (None, None),
    ],
)
def test_decimals_are_strings_as_rails_writes_them(value: float | None, text: str | None) -> None:
    assert wire.decimal(value) == text


def test_dates_are_what_the_sdk_parses() -> None:
    text = wire.iso_date(1712576571.856)
    assert text == "2024-04-08T11:42:51.856Z"
    assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")  # the SDK's own format
    assert wire.iso_date(None) is None


def test_tokens_are_uuid4() -> None:
    token = wire.new_token()
    assert uuid.UUID(token).version == 4


def test_fields_parameter() -> None:
    assert wire.parse_fields(None).requested == wire.DEFAULT_FIELDS
    assert wire.parse_fields("").requested == wire.DEFAULT_FIELDS
    star = wire.parse_fields("*")
    assert star.requested == wire.AVAILABLE_FIELDS
    assert "id" not in star.requested
    assert star.requested[-2:] == ("status", "language")
    assert len(wire.COLUMNS) == 33
    assert wire.parse_fields("stdout,token").requested == ("stdout", "token")
    bad = wire.parse_fields("stdout,foo,bar")
    assert bad.error == "invalid fields: [foo, bar]"
    assert bad.requested == ("stdout",)


def test_statuses_are_judge0s() -> None:
    doc = wire.statuses_doc()
    assert [s["id"] for s in doc] == list(range(1, 15))
    assert doc[11] == {"id": 12, "description": "Runtime Error (Other)"}


def test_pagination_is_will_paginates() -> None:
    assert wire.pagination(1, 20, 0) == {
        "current_page": 1,
        "next_page": None,
        "prev_page": None,
        "total_pages": 0,
        "total_count": 0,
    }
    assert wire.pagination(2, 2, 5) == {
        "current_page": 2,
        "next_page": 3,
        "prev_page": 1,
        "total_pages": 3,
        "total_count": 5,
    }


def test_ruby_to_i() -> None:
    assert wire.ruby_to_i(None) is None
    assert wire.ruby_to_i("12abc") == 12
    assert wire.ruby_to_i("abc") == 0
    assert wire.ruby_to_i("-3") == -3
