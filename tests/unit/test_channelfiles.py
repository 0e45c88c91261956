"""Files over the supervisor channel, as data: request lines, read plans, archives."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from orchestrator.errors import TransferRefused
from orchestrator.sandbox.channelfiles import (
    CHUNK_BYTES,
    Listed,
    PutEntry,
    box_path,
    files_to_entries,
    parse_listing,
    put_lines,
    raw_tar,
    read_plan,
    tar_to_entries,
)
from orchestrator.sandbox.tar import build_tar, vet_archive


def docs(lines: list[tuple[bytes, list[str]]]) -> list[dict[str, object]]:
    return [json.loads(line) for line, _ in lines]


def test_small_files_share_one_request() -> None:
    lines = put_lines(files_to_entries({"a/b.txt": b"x", "c": b""}), parents=True)
    (doc,) = docs(lines)
    assert doc["op"] == "put"
    assert doc["parents"] == 1
    assert doc["entries"] == [{"path": "a/b.txt", "data": "eA=="}, {"path": "c", "data": ""}]
    assert lines[0][1] == ["a/b.txt", "c"]


def test_large_files_are_split_into_appended_chunks() -> None:
    data = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)
    lines = put_lines([PutEntry("big", data, 0o755)], parents=False)
    assert len(lines) == 3
    for line, _ in lines:
        assert len(line) < 1 << 20  # the supervisor's line limit
    got = b""
    for i, doc in enumerate(docs(lines)):
        (entry,) = doc["entries"]  # type: ignore[misc]
        assert entry.get("append", 0) == (1 if i else 0)
        assert entry["mode"] == 0o755
        got += base64.b64decode(entry["data"])
    assert got == data


def test_unsafe_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\.\."):
        files_to_entries({"../x": b""})
    with pytest.raises(ValueError, match="absolute"):
        files_to_entries({"/etc/passwd": b""})


def test_a_vetted_tar_becomes_entries_under_a_directory() -> None:
    entries = tar_to_entries(build_tar({"d/f": b"hi"}), "into")
    assert entries == [PutEntry("into/d", None, 0o755), PutEntry("into/d/f", b"hi", 0o644)]


def test_a_tar_with_a_link_is_not_turned_into_entries() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("l")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="not a regular file"):
        tar_to_entries(buf.getvalue(), "")


def test_listing_names_map_back_to_box_paths() -> None:
    assert box_path("box", "") == ""
    assert box_path("box/a/b", "") == "a/b"
    assert box_path("c", "a/b/c") == "a/b/c"
    assert box_path("c/x", "a/b/c") == "a/b/c/x"
    assert box_path("c", "c") == "c"


def test_read_plan_covers_every_byte_in_bounded_batches() -> None:
    listing = [
        Listed("d", "d", 0o755, 0),
        Listed("d/small", "f", 0o644, 10),
        Listed("d/l", "l", 0o777, 0, "x"),
        Listed("d/big", "f", 0o644, CHUNK_BYTES + 5),
        Listed("d/empty", "f", 0o644, 0),
    ]
    plan = read_plan(listing, "d")
    for batch in plan:
        assert sum(n for _, _, n in batch) <= CHUNK_BYTES
    covered: dict[int, int] = {}
    for batch in plan:
        for i, offset, n in batch:
            assert offset == covered.get(i, 0)
            covered[i] = offset + n
    assert covered == {1: 10, 3: CHUNK_BYTES + 5}


def test_malformed_listings_are_refused() -> None:
    assert parse_listing([["a", "l", 511, 0, "t"]]) == [Listed("a", "l", 511, 0, "t")]
    for bad in (["a", "x", 0, 0], ["a", "f", 0, -1], "a", ["a", "f", "0", 0]):
        with pytest.raises(ValueError, match="malformed"):
            parse_listing([bad])


def test_a_listing_is_vetted_like_an_engine_archive() -> None:
    listing = [
        Listed("out", "d", 0o755, 0),
        Listed("out/f", "f", 0o4755, 2),
        Listed("out/link", "l", 0o777, 0, "/etc/passwd"),
        Listed("out/fifo", "o", 0o644, 0),
    ]
    raw = raw_tar(listing, {1: b"hi"})
    with pytest.raises(TransferRefused, match=r"'out/link' is a link \(to '/etc/passwd'\)"):
        vet_archive(raw, "'out'", max_file_bytes=1024)
    kept = vet_archive(raw, "'out'", max_file_bytes=1024, skip_special=True)
    with tarfile.open(fileobj=io.BytesIO(kept)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["out", "out/f"]
        assert members["out/f"].mode == 0o755  # no setuid crosses
        assert tar.extractfile(members["out/f"]).read() == b"hi"  # type: ignore[union-attr]
    with pytest.raises(TransferRefused, match="larger than"):
        vet_archive(raw_tar(listing[:2], {1: b"hi"}), "'out'", max_file_bytes=1)


def test_many_small_entries_fill_several_lines_under_the_limit() -> None:
    entries = [PutEntry(f"many/{i:06d}", b"") for i in range(20_000)]
    lines = put_lines(entries, parents=False)
    assert len(lines) > 1
    for line, _ in lines:
        assert len(line) < 1 << 20
    assert [p for _, paths in lines for p in paths] == [e.path for e in entries]
