"""Fixtures of the front-door tests: those of the service tests (a judge on a real port, a
client session), and helpers to talk to the executor and exec APIs."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from tests.service.conftest import (  # noqa: F401
    servers,
    session,
    settings,
    start_judge,
)
from tests.service.support import ALICE

AUTH = {"Authorization": f"Bearer {ALICE}"}

# The seed's job definition, byte for byte.
SEED_CONFIG = {
    "cmd": "echo",
    "args": ["some sample text to be written to file to be written to job_stdout.txt"],
    "resultArtifacts": [{"name": "all", "resultPatterns": []}],
}


def make_zip(files: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    """A zip of ``files``; ``links`` (name -> target) become symbolic-link entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            archive.writestr(info, target)
    return buf.getvalue()


def job_zip(config: dict[str, Any], **files: bytes) -> bytes:
    return make_zip({"executor_config.json": json.dumps(config).encode(), **files})
