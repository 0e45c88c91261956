"""The Judge0 door's settings (``JUDGE_JUDGE0_*``): anonymous access, and the maxima a
submission may ask for, which an operator may raise from Judge0's up to what a sandbox allows."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.frontdoors.judge0.request import Judge0Config


class Judge0Settings(BaseSettings):
    """Every field is ``JUDGE_JUDGE0_<FIELD>``; the defaults are Judge0 CE 1.13.1's."""

    model_config = SettingsConfigDict(
        env_prefix="JUDGE_JUDGE0_", frozen=True, extra="ignore", allow_inf_nan=False
    )

    # A default Judge0 CE has no authentication: let token-less clients in as one tenant.
    anonymous: bool = False
    # Maxima (Judge0's names, its units: seconds, KB). A run's CPU limit plus its extra time
    # stays within a mission's 60 s; memory within 2 GiB; a file within 256 MiB.
    max_cpu_time_limit: Annotated[float, Field(gt=0, le=50)] = 15.0
    max_cpu_extra_time: Annotated[float, Field(ge=0, le=10)] = 5.0
    max_wall_time_limit: Annotated[float, Field(ge=1, le=150)] = 20.0
    max_memory_limit: Annotated[int, Field(ge=2048, le=2097152)] = 512000
    max_stack_limit: Annotated[int, Field(ge=0, le=2097152)] = 128000
    max_max_processes_and_or_threads: Annotated[int, Field(ge=1, le=1024)] = 120
    max_max_file_size: Annotated[int, Field(ge=1, le=262144)] = 4096
    max_number_of_runs: Annotated[int, Field(ge=1, le=100)] = 20
    enable_submission_delete: bool = True
    # The compile cache: bytes of compiled boxes kept, and for how long.
    compile_cache_bytes: Annotated[int, Field(ge=0)] = 256 * 1024 * 1024
    compile_cache_ttl_s: Annotated[float, Field(ge=0)] = 600.0
    # A ``wait=true`` submission waits as long as its run takes while the engine answers; once
    # the engine has not answered for this long it is cancelled and the answer is 503.
    wait_outage_s: Annotated[float, Field(ge=0, le=3600)] = 30.0

    def config(
        self, *, max_queue_size: int, callbacks_max_tries: int, callbacks_timeout: float
    ) -> Judge0Config:
        return Judge0Config(
            max_cpu_time_limit=self.max_cpu_time_limit,
            max_cpu_extra_time=self.max_cpu_extra_time,
            max_wall_time_limit=self.max_wall_time_limit,
            max_memory_limit=self.max_memory_limit,
            max_stack_limit=self.max_stack_limit,
            max_max_processes_and_or_threads=self.max_max_processes_and_or_threads,
            max_max_file_size=self.max_max_file_size,
            max_number_of_runs=self.max_number_of_runs,
            max_queue_size=max_queue_size,
            callbacks_max_tries=callbacks_max_tries,
            callbacks_timeout=callbacks_timeout,
            enable_submission_delete=self.enable_submission_delete,
        )
