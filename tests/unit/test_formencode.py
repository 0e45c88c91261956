"""The callback's form encoding is byte for byte urllib's, in and across slices."""

from __future__ import annotations

import json
import random
import urllib.parse

from service.pipeline import formencode


def test_every_byte_and_character_encodes_as_urllib_does() -> None:
    every_char = "".join(chr(c) for c in range(0x800)) + "\U0001f600 é ü"
    for value in ["", " ", "a b+c&d=e%f", every_char, "~._-", "\x00\x7f"]:
        assert formencode.quote_plus(value) == urllib.parse.quote_plus(value), value


def test_values_larger_than_a_slice_encode_as_urllib_does() -> None:
    rng = random.Random(7)
    # Multi-byte characters straddle the slice boundaries: slicing is by UTF-8 byte.
    alphabet = 'ab %&=+/é€\U0001f600\n"{}'
    value = "".join(rng.choice(alphabet) for _ in range(3 * formencode.SLICE_BYTES + 17))
    assert len(value.encode()) > 3 * formencode.SLICE_BYTES
    assert formencode.quote_plus(value) == urllib.parse.quote_plus(value)


def test_a_callback_form_is_urllibs() -> None:
    result = {"prepare": {"execute": [{"meta": {"status": "", "message": "ok é"}}] * 500}}
    fields = [
        ("id", "12"),
        ("mission", json.dumps({"a b": 1})),
        ("mission_result", json.dumps(result)),
    ]
    fields.append(("payload key", "välue & more"))
    assert formencode.urlencode(fields) == urllib.parse.urlencode(fields)
