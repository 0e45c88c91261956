"""The service's one typed settings object, built from the environment in ``main()``.

Every field is read from ``JUDGE_<FIELD>`` (pydantic-settings). Nothing reads the environment at
import time; tests build ``Settings`` directly or set variables with ``monkeypatch``.
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from orchestrator.mission import MissionCaps
from orchestrator.netpolicy import AddressPolicy
from orchestrator.sandbox.pool import parse_pool_sizes
from service.pipeline.callbacks import signing_key
from service.store.records import hash_token

ENV_PREFIX = "JUDGE_"


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


def describe(e: ValidationError) -> str:
    """The problems of ``e`` as one line, each naming its variable (``JUDGE_<FIELD>``)."""
    problems = []
    for err in e.errors():
        field = str(err["loc"][0]) if err["loc"] else "settings"
        problems.append(f"{ENV_PREFIX}{field.upper()} ({field}): {err['msg']}")
    return "; ".join(problems)


# Every submission asks for the address policy (its callback URL is checked against it): parsed
# once per value rather than per request. Keyed by the values, so other settings get their own.
_address_policy = functools.lru_cache(maxsize=16)(AddressPolicy.parse)


class Settings(BaseSettings):
    """Everything the server can be told; every field has a usable default.

    Raises ``SettingsError`` when a value is out of range, however it was built.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="ignore",
        allow_inf_nan=False,
        validate_default=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Comma-separated in the environment: "a,b,c".
    tokens: Annotated[tuple[str, ...], NoDecode] = ()
    # Container runtimes a mission may name in "runtime" (comma-separated: "runc,runsc").
    runtimes: Annotated[tuple[str, ...], NoDecode] = ("runc",)
    data_dir: Path = Path("data")
    # Empty: SQLite under data_dir (one node). postgresql://...: shared by every node.
    database_url: str = ""
    # Several nodes on one host share the port (SO_REUSEPORT: the kernel spreads connections
    # over them), to use more than one core for HTTP. Only with database_url: a client's next
    # request may reach another node, which must see its missions.
    reuse_port: bool = False
    # A node holds a claimed mission or callback this long unless it renews the lease; when a
    # node dies, another re-runs its missions this long after its last renewal.
    lease_s: float = Field(20.0, ge=1, le=3600)
    default_image: str = Field("judge/default", min_length=1)
    max_running: int = Field(2, ge=1, le=256)
    max_queued: int = Field(100, ge=0, le=1_000_000)
    # A mission interrupted by the engine or a sandbox's supervisor (never a verdict) is run
    # again from the start, at most this many times, and while the engine's continuous outage
    # lasts at most engine_outage_s; past either it ends failed, saying why.
    max_reruns: int = Field(3, ge=0, le=100)
    engine_outage_s: float = Field(600.0, ge=1, le=86400)
    callback_secret: str = ""
    block_private_urls: bool = False
    # Comma-separated networks and host names private URLs may still reach: "10.1.2.0/24,files.lan"
    allow_private: Annotated[tuple[str, ...], NoDecode] = ()
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=1 << 30)
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600)
    callback_attempts: int = Field(8, ge=1, le=1000)
    callback_initial_wait_s: float = Field(0.5, ge=0, le=3600)
    callback_max_wait_s: float = Field(300.0, ge=0, le=86400)
    callback_timeout_s: float = Field(30.0, ge=0.1, le=3600)
    callback_concurrency: int = Field(32, ge=1, le=10_000)
    sandbox_owner: str = Field("judge", min_length=1)
    sandbox_box_kib: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    sandbox_tmp_kib: int = Field(64 * 1024, ge=1024, le=64 * 1024 * 1024)
    sandbox_pids: int = Field(128, ge=16, le=1_000_000)
    docker_threads: int = Field(64, ge=4, le=4096)
    # Worker processes that decode and validate large submissions, off the event loop's GIL.
    offload_processes: int = Field(2, ge=1, le=64)
    # Warm sandboxes per image, "IMAGE=N,IMAGE=N"; unset or "": the default image with 2 ready;
    # "none": no pool.
    pool: str | None = None
    # The most sandboxes one image keeps ready: its target follows demand (the most taken
    # between two moments the pool was full, over the last pool_window_s) up to this.
    pool_max: int = Field(24, ge=0, le=64)
    pool_window_s: float = Field(60.0, ge=1, le=86400)
    pool_concurrency: int = Field(2, ge=1, le=64)
    # Refills and removals of used sandboxes wait for this long a quiet spell (no sandbox in
    # use), at most pool_defer_max_s, so that they do not slow the executes running meanwhile.
    pool_quiet_s: float = Field(0.1, ge=0, le=60)
    pool_defer_max_s: float = Field(2.0, ge=0, le=600)
    # The execute memory (KiB) a warm sandbox's hard fence is sized for. The supervisor enforces
    # each execute's own limit; an execute asking more than this costs an engine call to raise
    # the fence. 512 MiB: what the doors' and the playground's compile steps ask.
    pool_memory_kib: int = Field(512 * 1024, ge=1024, le=2_097_152)
    # The largest tasks.parallel a mission may ask for (1: tasks always run one by one).
    max_task_parallel: int = Field(4, ge=1, le=64)
    # Work one mission may ask for (see orchestrator.mission.MissionCaps); 413 beyond.
    max_executes: int = Field(10_000, ge=1, le=1_000_000)
    max_expanded_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=1 << 30)
    max_macros_per_task: int = Field(256, ge=1, le=100_000)
    max_macro_value_bytes: int = Field(64 * 1024, ge=16, le=64 * 1024 * 1024)
    max_json_depth: int = Field(32, ge=8, le=512)
    max_files: int = Field(10_000, ge=1, le=1_000_000)
    # The most bytes of files (downloads, blob: reads, imports) one mission holds in the server.
    mission_files_bytes: int = Field(512 * 1024 * 1024, ge=1024 * 1024, le=1 << 40)
    max_macro_key_bytes: int = Field(32, ge=11, le=4096)
    # Finished jobs and missions, and blobs no token touched, are removed after this long.
    retention_s: float = Field(7 * 86400.0, ge=1, le=10 * 365 * 86400.0)
    retention_sweep_s: float = Field(600.0, ge=0.1, le=86400)
    # How often the language registry looks at the engine's images (one cheap engine call; it
    # also looks when a client lists the languages or names an unknown one).
    languages_refresh_s: float = Field(10.0, ge=0.05, le=3600)
    # Submissions per minute per token (0: no limit).
    rate_limit: int = Field(0, ge=0, le=1_000_000)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise SettingsError(describe(e)) from None

    @field_validator("tokens", "runtimes", "allow_private", mode="before")
    @classmethod
    def _split_tokens(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(t.strip() for t in v.split(",") if t.strip())
        return v

    @field_validator("pool")
    @classmethod
    def _check_pool(cls, v: str | None) -> str | None:
        if v is not None:
            parse_pool_sizes(v)  # its ValueError names the bad entry
        return v

    @property
    def pool_sizes(self) -> dict[str, int]:
        """Warm sandboxes to keep per image (``pool``, or the default image with 2)."""
        if not self.pool or not self.pool.strip():
            return {self.default_image: 2}
        return parse_pool_sizes(self.pool)

    @field_validator("allow_private")
    @classmethod
    def _allowlist_parses(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        AddressPolicy.parse(True, v)  # raises ValueError naming a malformed entry
        return v

    @model_validator(mode="after")
    def _reuse_port_shares_a_database(self) -> Settings:
        if self.reuse_port and not self.database_url:
            raise ValueError(
                "JUDGE_REUSE_PORT needs JUDGE_DATABASE_URL: nodes sharing a port must share "
                "their missions (SQLite is one node's own)"
            )
        return self

    @field_validator("callback_secret")
    @classmethod
    def _secret_usable(cls, v: str) -> str:
        signing_key(v)  # a whsec_ secret must decode; raises ValueError naming the problem
        return v

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from the ``JUDGE_*`` variables of this process's environment.

        Raises ``SettingsError`` naming the variable for a value that does not fit.
        """
        return cls()

    @classmethod
    def variables(cls) -> list[str]:
        """Every environment variable the server reads, for docs and tests."""
        return [f"{ENV_PREFIX}{name.upper()}" for name in cls.model_fields]

    @property
    def address_policy(self) -> AddressPolicy:
        """What downloads and callbacks may reach: ``block_private_urls`` and its allowlist."""
        return _address_policy(self.block_private_urls, self.allow_private)

    @property
    def listens_beyond_loopback(self) -> bool:
        """Whether ``host`` is reachable from other machines (not 127.x, ::1 or localhost)."""
        if self.host.strip("[]").lower() == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return True  # a host name: assume it resolves to a reachable address

    @functools.cached_property
    def mission_caps(self) -> MissionCaps:
        """The caps every submitted mission is checked against (made once: every submission
        asks)."""
        return MissionCaps(
            max_executes=self.max_executes,
            max_expanded_bytes=self.max_expanded_bytes,
            max_macros_per_task=self.max_macros_per_task,
            max_macro_value_bytes=self.max_macro_value_bytes,
            max_json_depth=self.max_json_depth,
            max_macro_key_bytes=self.max_macro_key_bytes,
            max_files=self.max_files,
        )

    @functools.cached_property
    def token_hashes(self) -> tuple[str, ...]:
        """The hashes of ``tokens`` (``service.store.records.hash_token``), hashed once rather
        than at every request."""
        return tuple(hash_token(token) for token in self.tokens)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "judge.sqlite3"

    @property
    def engine_threads(self) -> int:
        """Threads for blocking Docker calls: a running execute holds one for its duration."""
        return max(self.docker_threads, 2 * self.max_running + 8)
