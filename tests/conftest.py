"""Shared fixtures: a real Dask LocalCluster, real SQLite and PostgreSQL stores; the fixtures
of tests/fixtures for every folder; and what the markers `slurm`, `postgres` and `chromium`
need from the machine, checked before each marked test (skipped without it, failed under
CI=true), with a check at collection that a test using their fixtures carries the marker."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import LocalCompute, LocalSettings
from orchestrator.service import Service
from orchestrator.settings import EngineSettings, Settings

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# Servers and runs made by the tests send provenance from a thread (a process per test app
# would cost seconds each); tests/orchestrator/kg/test_outbox.py checks the process registrar
# itself.
os.environ.setdefault("ORCHESTRATOR_KG__REGISTRAR", "thread")

pytest_plugins = [
    "tests.fixtures.api",
    "tests.fixtures.aws",
    "tests.fixtures.project_roles",
    "tests.fixtures.slurm",
]

PG_SKIP = "no PostgreSQL server: set ORCHESTRATOR_TEST_PG_URL (deploy/postgres/up)"
PG_CI = (
    "CI=true but ORCHESTRATOR_TEST_PG_URL is not set: the test command "
    "must start PostgreSQL (deploy/postgres/up)"
)
CHROMIUM_SKIP = "no /usr/bin/chromium (apt-get install chromium) to render the page"
CHROMIUM_CI = "CI=true but chromium is missing: the test command installs `chromium`"
# a test using one of these fixtures must carry the marker (checked at collection)
MARKED_FIXTURES = {
    "slurm": ("slurm_env", "slurm", "slurm_service"),
    "postgres": ("pg_url",),
    "aws": ("moto_url", "aws", "s3"),
}


def _missing(marker: str) -> tuple[str, str] | None:
    """(reason to skip, reason to fail under CI=true) when the machine lacks what `marker`
    needs; None when it has it."""
    if marker == "slurm":
        from tests.fixtures.slurm import local_slurm
        from tests.slurm_env import SKIP_REASON

        if local_slurm() is None:
            return SKIP_REASON, f"CI=true requires the local SLURM: {SKIP_REASON}"
    elif marker == "postgres":
        if not os.environ.get("ORCHESTRATOR_TEST_PG_URL"):
            return PG_SKIP, PG_CI
    elif marker == "chromium":
        from tests.orchestrator.dashboard import chromium

        if not chromium.available():
            return CHROMIUM_SKIP, CHROMIUM_CI
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("slurm", "postgres", "chromium"):
        if item.get_closest_marker(marker) is None:
            continue
        missing = _missing(marker)
        if missing is not None:
            skip, fail = missing
            if IN_CI:
                pytest.fail(fail, pytrace=False)
            pytest.skip(skip)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = []
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in MARKED_FIXTURES.items():
            if used & set(fixtures) and item.get_closest_marker(marker) is None:
                names = ", ".join(sorted(used & set(fixtures)))
                unmarked.append(f"{item.nodeid}: uses {names} without the `{marker}` marker")
    if unmarked:
        raise pytest.UsageError("tests need their markers:\n  " + "\n  ".join(unmarked))


@pytest.fixture(scope="session")
def compute() -> Iterator[LocalCompute]:
    """One real LocalCluster (2 worker processes) for the whole session."""
    with LocalCompute(
        LocalSettings(n_workers=2, threads_per_worker=1, dashboard_address=None)
    ) as local:
        yield local


def fast_engine() -> EngineSettings:
    return EngineSettings(
        retry_backoff=0.05,
        retry_backoff_max=0.2,
        control_interval=0.1,
        flush_interval=0.02,
        lease_seconds=5.0,
    )


@pytest.fixture(scope="session")
def pg_server_url() -> str | None:
    url = os.environ.get("ORCHESTRATOR_TEST_PG_URL")
    if not url and IN_CI:
        pytest.fail(PG_CI)
    return url


@pytest.fixture
def pg_url(pg_server_url: str | None) -> Iterator[str]:
    """A fresh PostgreSQL database on the test server, dropped afterwards."""
    if not pg_server_url:
        pytest.skip(PG_SKIP)
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"orch_{secrets.token_hex(4)}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", results_url=str(tmp_path / "results"), engine=fast_engine()
    )


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    svc = Service(settings)
    yield svc
    svc.close()


@pytest.fixture
def any_service(db_url: str, tmp_path: Path) -> Iterator[Service]:
    """A service on SQLite, then on PostgreSQL (the same tests run on both)."""
    svc = Service(
        Settings(
            data_dir=tmp_path / "data",
            db_url=db_url,
            results_url=str(tmp_path / "results"),
            engine=fast_engine(),
        )
    )
    yield svc
    svc.close()
