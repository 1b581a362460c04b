"""The engine's settings for one run (built from `orchestrator.settings` by the service)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.results.exports import ExportConfig


@dataclass
class EngineConfig:
    max_in_flight: int = 2000
    retry_backoff: float = 1.0
    retry_backoff_max: float = 60.0
    control_interval: float = 0.5
    lease_seconds: float = 30.0
    flush_interval: float = 0.05
    store_limit: int = 65536
    inline_limit: int = 1 << 20
    timeout_grace: float = 30.0
    chunk: int = 2000
    collect_linger: float = 0.02
    collect_wait: float = 0.2
    max_unwritten: int = 5000
    batch_poll_interval: float = 2.0
    upload_deadline: float = 300.0
    upload_block_size: int = 16 << 20
    max_gathered_points: int = 1_000_000
    provenance: bool = True  # write knowledge-graph registrations to the store's outbox
    export: ExportConfig | None = None  # FSx exports of results on the cluster's Lustre
