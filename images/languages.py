"""The label step of images/build.sh: an image's languages.json, with versions probed, as labels.

    python3 images/languages.py NAME BUILT_ID

Reads images/NAME/languages.json (entries of the form ``{"id": ..., "from": "OTHER"}`` take
OTHER's entry of that id, with the entry's other keys over it), runs every entry's version
command in one container of BUILT_ID (no network), fills each ``version`` with the semver-clean
string its regex captures (``1.19`` becomes ``1.19.0``) and tags ``judge/NAME`` as BUILT_ID
plus the labels

    judge.languages        the entries, as JSON, versions filled in
    judge.languages.image  judge/NAME: the image that declares them (an image built FROM it
                           inherits the labels but declares nothing until it sets its own)
    judge.languages.source a digest of BUILT_ID and the entries: when it matches the label of
                           the current judge/NAME, nothing is probed or tagged again

The labels are added with ``docker commit`` of a container that never starts (a Dockerfile
``LABEL`` cannot hold a value computed at build time). Standard library only: it runs on the
host before any virtualenv exists. Exits non-zero, saying why, when an entry or a probe fails.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARK = "@@judge-version@@"
SEMVER = re.compile(r"^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?")


def fail(message: str) -> None:
    print(f"images: languages: {message}", file=sys.stderr)
    sys.exit(1)


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        fail(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def entries_of(name: str) -> list[dict[str, Any]]:
    """images/NAME/languages.json with every ``from`` resolved."""
    path = HERE / name / "languages.json"
    doc = json.loads(path.read_text())
    if not isinstance(doc, list):
        fail(f"{path}: must be a list of languages")
    out = []
    for entry in doc:
        if "from" in entry:
            base = {e["id"]: e for e in entries_of(entry["from"])}.get(entry["id"])
            if base is None:
                fail(f"{path}: images/{entry['from']} declares no language {entry['id']!r}")
            entry = {**base, **{k: v for k, v in entry.items() if k != "from"}}
        out.append(entry)
    return out


def normalise_version(text: str) -> str:
    """``1.19`` -> ``1.19.0``; the first three numbers of a longer version."""
    m = SEMVER.match(text)
    if m is None:
        raise ValueError(text)
    return f"{int(m[1])}.{int(m[2])}.{int(m[3] or 0)}"


def probe(image: str, entries: list[dict[str, Any]]) -> None:
    """Fill each entry's ``version`` (a ``{command, regex}`` object) from one container run."""
    script = []
    for entry in entries:
        version = entry.get("version")
        command = version.get("command") if isinstance(version, dict) else None
        script.append(f"echo {MARK}")
        if command:
            script.append(" ".join(shlex.quote(str(a)) for a in command) + " 2>&1")
    # stdout only: a command's own stderr was folded into it above.
    out = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", "\n".join(script)
    )
    outputs = out.split(MARK + "\n")[1:]
    for entry, output in zip(entries, outputs, strict=True):
        version = entry.get("version")
        if isinstance(version, str):
            entry["version"] = normalise_version(version)
            continue
        if not isinstance(version, dict):
            fail(f"{entry.get('id')}: version must be a string or {{command, regex}}")
        m = re.search(version["regex"], output)
        if m is None:
            fail(f"{entry.get('id')}: {version['regex']!r} found no version in {output!r}")
        entry["version"] = normalise_version(m[1])


def quote(value: str) -> str:
    """``value`` as a Dockerfile double-quoted string (which also expands ``$``)."""
    for c in ("\\", '"', "$"):
        value = value.replace(c, "\\" + c)
    return f'"{value}"'


def main() -> None:
    if len(sys.argv) != 3:
        fail("usage: languages.py NAME BUILT_ID")
    name, built = sys.argv[1], sys.argv[2]
    tag = f"judge/{name}"
    entries = entries_of(name)
    source = hashlib.sha256((built + json.dumps(entries, sort_keys=True)).encode()).hexdigest()[:32]
    current = docker(
        "image",
        "inspect",
        "-f",
        '{{index .Config.Labels "judge.languages.source"}}',
        tag,
        check=False,
    ).strip()
    if current == source:
        print(f"images: {tag} languages up to date", file=sys.stderr)
        return
    probe(built, entries)
    labels = {
        "judge.languages": json.dumps(entries, separators=(",", ":"), ensure_ascii=False),
        "judge.languages.image": tag,
        "judge.languages.source": source,
    }
    container = docker("create", "--network", "none", built).strip()
    try:
        changes = [a for k, v in labels.items() for a in ("--change", f"LABEL {k}={quote(v)}")]
        docker("commit", *changes, container, tag)
    finally:
        docker("rm", "-f", container, check=False)
    versions = ", ".join(f"{e['id']} {e['version']}" for e in entries)
    print(f"images: {tag} labelled: {versions}", file=sys.stderr)


if __name__ == "__main__":
    main()
