"""The service's one typed settings object, built from the environment in ``main()``.

Nothing reads the environment at import time; tests build ``Settings`` directly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting has a value the service cannot use."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true or false")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as e:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from e


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as e:
        raise SettingsError(f"{name}={raw!r}: expected a number") from e
    if not math.isfinite(value):
        raise SettingsError(f"{name}={raw!r}: expected a finite number")
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _tokens(name: str, raw: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in raw.split(",") if t.strip())


# Environment variable -> (field, parser). Ranges are checked by ``Settings`` itself, so a
# ``Settings`` built directly (tests) is held to the same rules.
_ENV: dict[str, tuple[str, Any]] = {
    "JUDGE_HOST": ("host", lambda n, v: v),
    "JUDGE_PORT": ("port", _int),
    "JUDGE_TOKENS": ("tokens", _tokens),
    "JUDGE_DATA_DIR": ("data_dir", lambda n, v: Path(v)),
    "JUDGE_DEFAULT_IMAGE": ("default_image", lambda n, v: v),
    "JUDGE_MAX_RUNNING": ("max_running", _int),
    "JUDGE_MAX_QUEUED": ("max_queued", _int),
    "JUDGE_CALLBACK_SECRET": ("callback_secret", lambda n, v: v),
    "JUDGE_BLOCK_PRIVATE_URLS": ("block_private_urls", _bool),
    "JUDGE_MAX_BODY_BYTES": ("max_body_bytes", _int),
    "JUDGE_SHUTDOWN_GRACE_S": ("shutdown_grace_s", _float),
    "JUDGE_CALLBACK_ATTEMPTS": ("callback_attempts", _int),
    "JUDGE_CALLBACK_INITIAL_WAIT_S": ("callback_initial_wait_s", _float),
    "JUDGE_CALLBACK_MAX_WAIT_S": ("callback_max_wait_s", _float),
    "JUDGE_CALLBACK_TIMEOUT_S": ("callback_timeout_s", _float),
    "JUDGE_CALLBACK_CONCURRENCY": ("callback_concurrency", _int),
    "JUDGE_SANDBOX_OWNER": ("sandbox_owner", lambda n, v: v),
    "JUDGE_DOCKER_THREADS": ("docker_threads", _int),
}

# field -> (low, high), inclusive.
_RANGES: dict[str, tuple[float, float]] = {
    "port": (0, 65535),
    "max_running": (1, 256),
    "max_queued": (0, 1_000_000),
    "max_body_bytes": (1024, 1 << 30),
    "shutdown_grace_s": (0, 3600),
    "callback_attempts": (1, 1000),
    "callback_initial_wait_s": (0, 3600),
    "callback_max_wait_s": (0, 86400),
    "callback_timeout_s": (0.1, 3600),
    "callback_concurrency": (1, 10_000),
    "sandbox_box_kib": (1024, 64 * 1024 * 1024),
    "sandbox_tmp_kib": (1024, 64 * 1024 * 1024),
    "sandbox_pids": (16, 1_000_000),
    "docker_threads": (4, 4096),
}


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told; every field has a usable default.

    Raises ``SettingsError`` when a value is out of range, however it was built.
    """

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
    callback_initial_wait_s: float = 0.5
    callback_max_wait_s: float = 300.0
    callback_timeout_s: float = 30.0
    callback_concurrency: int = 32
    sandbox_owner: str = "judge"
    sandbox_box_kib: int = 256 * 1024
    sandbox_tmp_kib: int = 64 * 1024
    sandbox_pids: int = 128
    docker_threads: int = 64

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(f"{name}={value}: expected {_num(low)}..{_num(high)}")
        if not self.sandbox_owner:
            raise SettingsError("sandbox_owner must not be empty")
        if not self.default_image:
            raise SettingsError("default_image must not be empty")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``JUDGE_*`` variables; raises ``SettingsError`` for a bad value."""
        env = os.environ if env is None else env
        changes: dict[str, Any] = {}
        for var, (name, parse) in _ENV.items():
            if var in env:
                changes[name] = parse(var, env[var])
        try:
            return replace(cls(), **changes)
        except SettingsError as e:
            names = [v for v, (n, _) in _ENV.items() if str(e).startswith(f"{n}=")]
            raise SettingsError(f"{names[0]}: {e}" if names else str(e)) from None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "judge.sqlite3"

    @property
    def engine_threads(self) -> int:
        """Threads for blocking Docker calls: a running execute holds one for its duration."""
        return max(self.docker_threads, 2 * self.max_running + 8)
