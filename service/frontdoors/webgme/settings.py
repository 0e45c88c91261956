"""The WebGME door's settings. Its variable kept the name it had before doors had settings of
their own (``JUDGE_STORAGE_QUOTA_BYTES``, not ``JUDGE_EXECUTOR_*``): deployments set it.

The retention period (``JUDGE_RETENTION_S``, ``JUDGE_RETENTION_SWEEP_S``) stays the judge's: it
is how long every mission is kept, and the Judge0 door forgets its submissions with it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings

from service.settings import Settings, SettingsError, describe


class WebgmeSettings(BaseSettings):
    """Raises ``SettingsError`` naming the variable when a value is out of range."""

    model_config = Settings.model_config  # the judge's rules: JUDGE_*, frozen, checked defaults

    # Executor blobs per token (files and artifacts it uploaded or its jobs produced).
    storage_quota_bytes: int = Field(1 << 30, ge=1024, le=1 << 50)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise SettingsError(describe(e)) from None
