"""The Piston door's settings: ``JUDGE_PISTON_*``, named after Piston's own configuration.

Each stage limit is both the default (a request that leaves it out, or sends ``-1`` or a falsy
value) and the most a request may ask for, as in Piston; beyond it the request is refused with
Piston's message ("run_timeout cannot exceed the configured limit of 3000"). Unlike Piston,
memory is never unlimited: ``-1`` means the configured limit.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "JUDGE_PISTON_"

MIB = 1024 * 1024


class PistonSettingsError(ValueError):
    """A ``JUDGE_PISTON_*`` value the door cannot use; the message names the variable."""


class PistonSettings(BaseSettings):
    """Everything the Piston door can be told; every field has a usable default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", validate_default=True
    )

    # Token-less clients (npm piston-client sends no header) get in as one anonymous tenant.
    anonymous: bool = False
    # Executes per minute per client address of the anonymous tenant (0: no limit).
    anonymous_rate_limit: int = Field(60, ge=0, le=1_000_000)
    # An exact version the judge lacks is refused (Piston's 400) instead of running on the
    # version of the same major number it has.
    strict_versions: bool = False
    # Characters of stdout and of stderr kept per stage; beyond: status OL / EL.
    output_max_size: int = Field(1024, ge=1, le=1024 * 1024)
    compile_timeout: int = Field(10_000, ge=1, le=600_000)  # ms, wall clock
    run_timeout: int = Field(3_000, ge=1, le=600_000)  # ms, wall clock
    compile_cpu_time: int = Field(10_000, ge=1, le=60_000)  # ms
    run_cpu_time: int = Field(3_000, ge=1, le=60_000)  # ms
    compile_memory_limit: int = Field(512 * MIB, ge=MIB, le=2048 * MIB)  # bytes
    run_memory_limit: int = Field(256 * MIB, ge=MIB, le=2048 * MIB)  # bytes
    # Processes and threads the run stage may have at once (once executes take a process limit).
    max_process_count: int = Field(64, ge=1, le=4096)
    # Largest file a request may send (decoded) and a stage may write, bytes.
    max_file_size: int = Field(10_000_000, ge=1024, le=1 << 30)
    # Most files one request may send.
    max_files: int = Field(256, ge=1, le=100_000)
    # Beyond the request's own compile and run timeouts, how long an execute may wait for a
    # worker and a sandbox (an engine outage, a full queue) before it is cancelled with 503.
    queue_wait_s: float = Field(30.0, ge=0, le=3600)
    # Interactive jobs (/api/v2/connect) running at once, each in a sandbox of its own beside
    # the missions; more wait for a slot up to queue_wait_s.
    max_live: int = Field(4, ge=1, le=1024)
    # Compiled boxes kept per tenant and source, so the same source sent again with other input
    # compiles once (0: no cache); entries older than compile_cache_ttl_s are dropped.
    compile_cache_bytes: int = Field(256 * MIB, ge=0, le=1 << 40)
    compile_cache_ttl_s: float = Field(600.0, ge=1, le=86400)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            problems = []
            for err in e.errors():
                name = str(err["loc"][0]) if err["loc"] else "settings"
                problems.append(f"{ENV_PREFIX}{name.upper()} ({name}): {err['msg']}")
            raise PistonSettingsError("; ".join(problems)) from None

    def stage_limit(self, name: str) -> int:
        """The configured limit ``name`` (``run_timeout``, ``compile_memory_limit``...)."""
        value = getattr(self, name)
        assert isinstance(value, int)
        return value


__all__ = ["ENV_PREFIX", "PistonSettings", "PistonSettingsError"]
