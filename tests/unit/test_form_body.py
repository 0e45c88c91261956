"""Form bodies (``service.http.body``): the C-speed decoding of UTF-8 forms answers exactly
what ``urllib.parse.parse_qsl`` answers, on random forms and on the cases that tell them apart."""

from __future__ import annotations

import json
import random
import urllib.parse

import pytest

from service.http.body import _parse_qsl_fields, _urlencoded_fields
from service.http.errors import ApiError

# Everything either decoder treats specially, and bytes that are not UTF-8 once unescaped.
PIECES = [
    "a", "Z", "0", "9", "f", "F", "g", "=", "&", "+", "%", "_", " ", "\n", "\r", "\t", "\x1c",
    "é", "☃", "😀", "\xa0", "%41", "%3D", "%26", "%2B", "%25", "%C3", "%A9", "%c3%a9", "%E2%98",
    "%83", "%F0%9F", "%FF", "%00", "%0A", "%0d", "%3d%0A", "%%", "%4", "%zz", "=%", "%=",
]  # fmt: skip


def oracle(raw: bytes) -> dict[str, str] | str:
    try:
        return _parse_qsl_fields(raw, "utf-8")
    except ApiError as e:
        return e.message


def decoded(raw: bytes, charset: str = "utf-8") -> dict[str, str] | str:
    try:
        return _urlencoded_fields(raw, charset)
    except ApiError as e:
        return e.message


def test_random_forms_decode_as_parse_qsl_decodes_them() -> None:
    rng = random.Random(24)
    for _ in range(20_000):
        raw = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))).encode()
        assert decoded(raw) == oracle(raw), raw


def test_random_bytes_decode_as_parse_qsl_decodes_them() -> None:
    rng = random.Random(25)
    for _ in range(5_000):
        raw = bytes(rng.choice(b"a=&+%3DFf\xc3\xa9\xff\x80 \n") for _ in range(rng.randint(0, 16)))
        assert decoded(raw) == oracle(raw), raw


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_a_submitted_mission_comes_back_whole(charset: str) -> None:
    mission = {"prepare": {"execute": [{"command": ["printf", "%s=%d & 100%% +1 é\n", "☃"]}]}}
    raw = urllib.parse.urlencode({"token": "t", "mission": json.dumps(mission)}).encode()
    assert decoded(raw, charset) == {"token": "t", "mission": json.dumps(mission)}


def test_other_charsets_and_undecodable_forms_are_told_as_before() -> None:
    raw = urllib.parse.urlencode({"name": "é"}, encoding="latin-1").encode("latin-1")
    assert decoded(raw, "latin-1") == {"name": "é"}
    assert decoded(b"name=\xff") == oracle(b"name=\xff")
    assert isinstance(decoded(b"name=\xff"), str)  # a 400's message
