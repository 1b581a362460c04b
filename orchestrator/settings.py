"""The service's settings: environment (`ORCHESTRATOR_…`, nested with `__`), then
`orchestrator.toml` (or the file `ORCHESTRATOR_CONFIG` names), then safe defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cluster import ClusterSettings
from cluster.provisioner.settings import ProvisionerSettings
from orchestrator.errors import SettingsError
from orchestrator.kg.settings import KnowledgeGraphSettings
from orchestrator.platform.settings import PlatformSettings


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "orchestrator"


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_in_flight: int = Field(default=2000, ge=1)
    retry_backoff: float = Field(default=1.0, ge=0)
    retry_backoff_max: float = Field(default=60.0, ge=0)
    control_interval: float = Field(default=0.5, gt=0)
    lease_seconds: float = Field(default=30.0, gt=1)
    flush_interval: float = Field(default=0.05, gt=0)
    store_limit: int = Field(default=65536, ge=0)
    inline_limit: int = Field(default=1 << 20, ge=0)
    timeout_grace: float = Field(default=30.0, ge=0)
    collect_linger: float = Field(default=0.02, ge=0)
    collect_wait: float = Field(default=0.2, ge=0)
    max_unwritten: int = Field(default=5000, ge=1)
    """Task writes not yet committed to the store beyond which the engine admits no new
    points until the store catches up (a store slower than the workers)."""
    """The longest a finished task waits for others to be collected with it (one gather,
    one refill of the window): larger batches cost the scheduler and workers less."""
    batch_poll_interval: float = Field(default=2.0, gt=0)
    upload_deadline: float = Field(default=300.0, gt=0)
    upload_block_size: int = Field(default=16 << 20, ge=5 << 20, le=5 << 30)
    max_gathered_points: int = Field(default=1_000_000, ge=1)
    """The most points a fan-in step may gather (it receives every point's result at once)."""


class AuthSettings(BaseModel):
    """OIDC bearer tokens (Keycloak in production). Without `jwks_url`, the embedded
    development issuer signs and checks tokens: there is no mode without authentication."""

    model_config = ConfigDict(extra="forbid")

    jwks_url: str | None = None
    issuer: str | None = None
    audience: str = "orchestrator"
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
    )
    leeway: float = Field(default=30.0, ge=0, le=300)
    dev_issuer: Literal["loopback", "allowed", "forbidden"] = "loopback"
    """Where the embedded development issuer may serve (without `jwks_url`): `loopback`, only
    when `serve` listens on a loopback address; `allowed`, anywhere (`serve
    --allow-dev-issuer`); `forbidden`, nowhere, whatever the command line says (the image)."""


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    projects: list[str] | None = None
    """Serve only these `vlab/project`s (one per container in production); None: all."""
    poll_interval: float = Field(default=1.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORCHESTRATOR_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    db_url: str | None = None
    """SQLAlchemy URL; default: a SQLite file in `data_dir`."""
    results_url: str = "./results"
    """Where campaigns without `results` in their spec keep results."""
    results_roots: list[str] | None = None
    """Where a spec's `results` may point: under one of these (`{vlab}` and `{project}` are
    the submitting project's parts, e.g. `s3://bucket/{vlab}/{project}`); None: under
    `results_url` only."""
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    kg: KnowledgeGraphSettings = Field(default_factory=KnowledgeGraphSettings)
    provisioner: ProvisionerSettings = Field(default_factory=ProvisionerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
    """The front door's: how projects' instances are started (`serve --role front-door`)."""
    shutdown_grace: float = Field(default=3.0, gt=0, le=25)
    """Seconds from SIGTERM (or Ctrl-C) to the end of the process, whatever it is doing
    (ECS and systemd kill it 30 s after SIGTERM); campaigns stay resumable."""
    url: str | None = None
    """A running server (`orchestrator serve`): the CLI then talks to it over HTTP."""

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'orchestrator.db'}"

    @model_validator(mode="after")
    def _hide_data_dir_from_tasks(self) -> Settings:
        """Local workers see the data folder (store, keys) empty, unless results go there."""
        local = self.cluster.local
        if local.hidden_paths is None:
            data = self.data_dir.expanduser().resolve()
            results = Path(self.results_url.removeprefix("file://")).expanduser().resolve()
            if "://" in self.results_url.removeprefix("file://") or not results.is_relative_to(
                data
            ):
                local.hidden_paths = [data]
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = os.environ.get("ORCHESTRATOR_CONFIG", "orchestrator.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml),
        )


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
