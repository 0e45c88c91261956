"""One relative-path rule and one control-character rule, and every user of them agrees:
mission paths, archive entries, artifact files and the tars the sandboxes exchange."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from orchestrator.mission import MissionInvalid, parse_mission
from orchestrator.paths import check_name, check_relative_path, has_control
from orchestrator.sandbox.tar import check_relative_path as tar_rule
from service.frontdoors.archives import ArchiveRefused, read_zip
from service.frontdoors.webgme.blobs import BlobRefused, parse_metadata

HASH = "0" * 40
HOSTILE = [
    "",
    "a\x00b",
    "/etc/passwd",
    "..",
    "a/../../b",
    "a/..",
    ".",
    "./",
    "a\nb",
    "x\x1by",
    "del\x7f",
    "c1\x85",
    "csi\x9b",
]


def mission_refuses(name: str) -> bool:
    try:
        parse_mission({"prepare": {"file": {name: "data:,x"}}})
    except MissionInvalid:
        return True
    return False


def archive_refuses(name: str) -> bool:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name or "x"), b"x")
    if not name or "\x00" in name:
        return True  # a zip cannot carry it (zipfile cuts a name at NUL when reading)
    try:
        read_zip(buf.getvalue())
    except ArchiveRefused:
        return True
    return False


def artifact_refuses(name: str) -> bool:
    doc = {
        "name": "a.zip",
        "contentType": "complex",
        "content": {name: {"content": HASH, "contentType": "object"}},
    }
    try:
        parse_metadata(json.dumps(doc).encode())
    except BlobRefused:
        return True
    return False


@pytest.mark.parametrize("name", HOSTILE)
def test_every_user_refuses_what_the_rules_refuse(name: str) -> None:
    with pytest.raises(ValueError, match=r"NUL|is absolute|'\.\.'|sandbox itself|control char"):
        check_name(name)
    assert mission_refuses(name)
    assert archive_refuses(name)
    assert artifact_refuses(name)


@pytest.mark.parametrize("name", ["a.txt", "dir/b.c", "é/名.txt", "sp ace", "n" * 300])
def test_every_user_accepts_a_plain_relative_name(name: str) -> None:
    assert check_name(name) == name
    assert not archive_refuses(name)
    assert not artifact_refuses(name)
    assert mission_refuses(name) == (len(name) > 255)  # a mission's paths fit Linux's NAME_MAX


def test_the_control_characters_are_c0_del_and_c1() -> None:
    controls = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
    assert all(has_control(f"a{c}b") for c in controls)
    assert not any(has_control(chr(c)) for c in range(0xA0, 0x800))
    assert not has_control(" ~\u2028")  # printable, or a separator that is not a control


def test_names_a_sandbox_made_are_held_to_the_path_rule_only() -> None:
    # An export may carry a file a program named with a newline: it is not refused.
    assert check_relative_path("out/a\nb") == "out/a\nb"
    with pytest.raises(ValueError, match="control character"):
        check_name("out/a\nb")
    assert tar_rule is check_relative_path


def test_artifacts_name_each_file_one_way_only() -> None:
    for name in ["./a", "a//b", "a/", "a/./b"]:
        assert check_relative_path(name) != name
        assert artifact_refuses(name)
