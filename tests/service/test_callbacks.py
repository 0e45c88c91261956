"""Callback encoding, signing and the retry policy's parts (no server, no engine)."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl

import pytest

from service.callbacks import _retry_after, callback_body, sign, url_refusal

NORMALISED = {"return": {"url": "http://x/cb", "payload": {"a": 1, "b": None, "c": "d&e=f"}}}
RESULT = {"prepare": {"file": {}, "execute": []}, "task": [], "final": {}}


def test_form_body_has_the_seed_fields_then_the_payload() -> None:
    body, ctype = callback_body(51, NORMALISED, RESULT, "form")
    assert ctype == "application/x-www-form-urlencoded"
    fields = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
    assert [k for k, _ in fields] == ["id", "mission", "mission_result", "a", "b", "c"]
    values = dict(fields)
    assert values["id"] == "51"
    assert json.loads(values["mission"]) == NORMALISED
    assert json.loads(values["mission_result"]) == RESULT
    assert (values["a"], values["b"], values["c"]) == ("1", "", "d&e=f")


def test_json_body_is_one_object() -> None:
    body, ctype = callback_body(51, NORMALISED, RESULT, "json")
    assert ctype == "application/json"
    assert json.loads(body) == {
        "id": 51,
        "mission": NORMALISED,
        "mission_result": RESULT,
        "a": 1,
        "b": None,
        "c": "d&e=f",
    }


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b"id=1&mission=%7B%7D"
    digest = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign("key", body) == f"sha256={digest}"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after(" 0 ") == 0.0
    assert _retry_after("-5") == 0.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (_retry_after(later) or 0) <= 30


@pytest.mark.parametrize(
    ("url", "block_private", "refused"),
    [
        ("http://127.0.0.1:8080/cb", False, False),
        ("http://127.0.0.1:8080/cb", True, True),
        ("http://[::1]/cb", True, True),
        ("http://10.1.2.3/cb", True, True),
        ("http://169.254.169.254/latest", False, True),  # cloud metadata: always refused
        ("http://example.com/cb", True, False),  # names are checked when they resolve
    ],
)
def test_literal_addresses_follow_the_policy(url: str, block_private: bool, refused: bool) -> None:
    assert (url_refusal(url, block_private) is not None) is refused
