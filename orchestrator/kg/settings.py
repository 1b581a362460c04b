"""Which knowledge graph the service registers into (nested as `kg` in the settings:
`ORCHESTRATOR_KG__KIND=nexus`, `ORCHESTRATOR_KG__NEXUS__BASE_URL=…`,
`ORCHESTRATOR_KG__NEXUS__TOKEN=…`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

EMBEDDED_DIRNAME = "kg"


class NexusSettings(BaseModel):
    """Blue Brain Nexus Delta. Without `org`/`project`, each item goes to the Nexus
    project named like its own project (`vlab_id` as org, `project_id` as project)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    """Delta's API root, including `/v1` (e.g. `https://nexus.example.org/v1`)."""
    org: str | None = None
    project: str | None = None
    token: SecretStr | None = None
    """A bearer token (no default: a secret)."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds per HTTP request."""
    attempts: int = Field(default=3, ge=1, le=10)
    """Quick tries per request on transient errors; the outbox retries longer."""
    backoff: float = Field(default=0.2, ge=0)
    """Seconds before the second try, doubled for each further one."""
    storage: str | None = None
    """The `@id` of a Delta S3 storage (in each project written to) whose bucket holds the
    campaign results: an output at `s3://{that bucket}/{key}` is also linked as a Nexus file
    of that storage (no bytes uploaded), which its resource points to. None: resources only."""

    @model_validator(mode="after")
    def _org_and_project_together(self) -> NexusSettings:
        if (self.org is None) != (self.project is None):
            raise ValueError("set both org and project, or neither")
        return self


class KnowledgeGraphSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Register campaigns, tasks and outputs (false: no provenance is recorded at all)."""
    kind: Literal["embedded", "nexus"] = "embedded"
    registrar: Literal["process", "thread"] = "process"
    """Where the outbox is sent from: a low-priority process of its own (default), or a
    thread of the service's process."""
    path: Path | None = None
    """The embedded store's folder; default `<data_dir>/kg`."""
    nexus: NexusSettings = Field(default_factory=NexusSettings)

    @model_validator(mode="after")
    def _nexus_complete(self) -> KnowledgeGraphSettings:
        if self.kind == "nexus" and not self.nexus.base_url:
            raise ValueError("kind 'nexus' needs nexus.base_url")
        return self


def embedded_path(settings: KnowledgeGraphSettings | None, data_dir: Path) -> Path:
    """Where the embedded store lives."""
    if settings is not None and settings.path is not None:
        return settings.path
    return Path(data_dir) / EMBEDDED_DIRNAME
