"""The service's one typed settings object, built from the environment in ``main()``.

Nothing reads the environment at import time; tests build ``Settings`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable has a value the service cannot use."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true or false")


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError as e:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from e
    if not low <= value <= high:
        raise SettingsError(f"{name}={value}: expected {low}..{high}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told; every field has a usable default."""

    host: str = "127.0.0.1"
    port: int = 8000
    tokens: tuple[str, ...] = ()
    data_dir: Path = field(default_factory=lambda: Path("data"))
    default_image: str = "judge/default"
    max_running: int = 2
    max_queued: int = 100
    callback_secret: str = ""
    block_private_urls: bool = False
    max_body_bytes: int = 16 * 1024 * 1024
    shutdown_grace_s: float = 30.0
    callback_attempts: int = 8
    callback_max_wait_s: float = 300.0
    callback_timeout_s: float = 30.0
    sandbox_owner: str = "judge"
    sandbox_box_kib: int = 256 * 1024
    sandbox_tmp_kib: int = 64 * 1024
    sandbox_pids: int = 128
    docker_threads: int = 64

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``JUDGE_*`` variables; raises ``SettingsError`` for a bad value."""
        env = os.environ if env is None else env
        kw: dict[str, object] = {}
        if "JUDGE_HOST" in env:
            kw["host"] = env["JUDGE_HOST"]
        if "JUDGE_PORT" in env:
            kw["port"] = _int("JUDGE_PORT", env["JUDGE_PORT"], 0, 65535)
        if "JUDGE_TOKENS" in env:
            kw["tokens"] = tuple(t.strip() for t in env["JUDGE_TOKENS"].split(",") if t.strip())
        if "JUDGE_DATA_DIR" in env:
            kw["data_dir"] = Path(env["JUDGE_DATA_DIR"])
        if "JUDGE_DEFAULT_IMAGE" in env:
            kw["default_image"] = env["JUDGE_DEFAULT_IMAGE"]
        if "JUDGE_MAX_RUNNING" in env:
            kw["max_running"] = _int("JUDGE_MAX_RUNNING", env["JUDGE_MAX_RUNNING"], 1, 256)
        if "JUDGE_MAX_QUEUED" in env:
            kw["max_queued"] = _int("JUDGE_MAX_QUEUED", env["JUDGE_MAX_QUEUED"], 0, 1_000_000)
        if "JUDGE_CALLBACK_SECRET" in env:
            kw["callback_secret"] = env["JUDGE_CALLBACK_SECRET"]
        if "JUDGE_BLOCK_PRIVATE_URLS" in env:
            kw["block_private_urls"] = _bool(
                "JUDGE_BLOCK_PRIVATE_URLS", env["JUDGE_BLOCK_PRIVATE_URLS"]
            )
        if "JUDGE_MAX_BODY_BYTES" in env:
            kw["max_body_bytes"] = _int(
                "JUDGE_MAX_BODY_BYTES", env["JUDGE_MAX_BODY_BYTES"], 1024, 1 << 30
            )
        if "JUDGE_SANDBOX_OWNER" in env:
            kw["sandbox_owner"] = env["JUDGE_SANDBOX_OWNER"]
        return cls(**kw)  # type: ignore[arg-type]

    @property
    def db_path(self) -> Path:
        return self.data_dir / "judge.sqlite3"
