"""Settings of a project's compute (nested under the service's `cluster` settings)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LocalSettings(BaseModel):
    """A Dask LocalCluster on this machine (the embedded default)."""

    model_config = ConfigDict(extra="forbid")

    n_workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    processes: bool = True
    memory_limit: str = "auto"
    dashboard_address: str | None = "127.0.0.1:8787"


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["local"] = "local"
    local: LocalSettings = Field(default_factory=LocalSettings)
