"""Callback encoding, signing and the retry policy's parts (no server, no engine)."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl

import pytest

from service.pipeline.callbacks import (
    _retry_after,
    callback_body,
    sign,
    signature_headers,
    signing_key,
    url_refusal,
)

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


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """The receiver's check, as docs/security.md shows it."""
    import base64 as b64

    key = b64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(ts)) > tolerance_s:
        return False
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + b64.b64encode(mac).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


# The example of the Standard Webhooks specification's reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_standard_webhooks_example() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_raw_and_whsec_secrets_sign_with_their_bytes() -> None:
    body = b"id=1&mission=%7B%7D"
    digest = hmac.new(b"key", b"m1.5." + body, hashlib.sha256).digest()
    assert sign("key", "m1", 5, body) == "v1," + base64.b64encode(digest).decode()
    assert sign("whsec_" + base64.b64encode(b"key").decode(), "m1", 5, body) == sign(
        "key", "m1", 5, body
    )
    with pytest.raises(ValueError, match="base64"):
        signing_key("whsec_not base64!")


def test_headers_verify_and_a_changed_field_does_not() -> None:
    body = b'{"id": 1}'
    headers = signature_headers(SPEC_SECRET, "delivery-1", body, time.time())
    assert verify(SPEC_SECRET, headers, body)
    assert headers["X-Judge-Delivery"] == headers["webhook-id"] == "delivery-1"
    assert not verify(SPEC_SECRET, headers, body + b" ")
    assert not verify(SPEC_SECRET, {**headers, "webhook-id": "delivery-2"}, body)
    stale = signature_headers(SPEC_SECRET, "delivery-1", body, time.time() - 3600)
    assert not verify(SPEC_SECRET, stale, body)  # a replay an hour later is refused
    forged_ts = {**stale, "webhook-timestamp": str(int(time.time()))}
    assert not verify(SPEC_SECRET, forged_ts, body)  # and its timestamp cannot be refreshed


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
