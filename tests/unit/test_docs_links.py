"""The repository's documentation is self-contained: every relative link resolves inside it and
nothing points to files outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.service.support import REPO

# Pages other branches add (linked from docs/README.md before they land); empty once merged.
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True
    )
    return [REPO / line for line in out.stdout.splitlines() if line]


def test_relative_links_resolve() -> None:
    broken = []
    pages = tracked("*.md")
    assert any(p.name == "missions.md" for p in pages)
    for page in pages:
        for target in _LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []


def test_nothing_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./" + "shared|" + "shared/" + r"(SPEC|STYLE|DESIGN|seeds)")
    hits = [
        str(p.relative_to(REPO))
        for p in tracked()
        if p.is_file()
        and p.suffix not in {".png", ".zip", ".tar"}
        and outside.search(p.read_text(errors="replace"))
    ]
    assert hits == []
