"""Property-based tests of the REST API from its own OpenAPI document (Schemathesis).

Every documented operation is called with generated inputs and a valid admin token of
`lab/p1`, in two ways:

- `test_own_project`: the path's `vlab_id`/`project_id` are pinned to the token's project
  (and `campaign_id`, when the path has one, is either a campaign seeded in that project or
  the generated value), so the requests get past the project check into the routes;
- `test_generated_paths`: every path parameter is generated (other projects: 404, malformed
  ids: 422).

Whatever the input, the app must not answer 5xx (`not_a_server_error`); the responses it
documents must also match their schemas (`response_schema_conformance`).

The app runs without its background runner, in-process over Schemathesis' ASGI transport,
which runs the app's lifespan (it sets `app.state.context`) on the first call and ends it
when the test ends (Schemathesis' pytest plugin). `text/event-stream` is never negotiated:
with no runner a campaign never ends, so its stream would not either.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.issuer import DevIssuer
from api.main import create_app
from cluster import LocalSettings
from orchestrator.service import Service
from orchestrator.settings import ClusterSettings, Settings
from orchestrator.spec import parse_document
from tests.conftest import fast_engine

PROJECT = {"vlab_id": "lab", "project_id": "p1"}
SPEC = {
    "name": "fuzzed",
    "parameters": {"x": {"range": [0, 4]}},
    "steps": {
        "sq": {"run": "tests.workloads:square", "foreach": True},
        "total": {"run": "tests.workloads:total_of_squares", "needs": ["sq"]},
    },
}
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)

# ids of the campaigns seeded in lab/p1 for the running test (see `served`)
SEEDED: list[str] = []
TASKS = ["sq:0", "sq:3", "sq:4", "sq", "total", "total:0", "nope"]


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        results_url=str(data_dir.parent / "results"),
        engine=fast_engine(),
        cluster=ClusterSettings(local=LocalSettings(n_workers=1, dashboard_address=None)),
    )


def _openapi() -> dict[str, Any]:
    """The app's `/openapi.json` (served without the lifespan: nothing is opened or created)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(_settings(Path(folder) / "data"), run_campaigns=False)
        response = TestClient(app).get("/openapi.json")
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


DOCUMENT = _openapi()
own_project = schemathesis.openapi.from_dict(DOCUMENT)
# an explicit override: every phase (examples, coverage, fuzzing) sends these values
own_project.config.update(parameters={f"path.{k}": v for k, v in PROJECT.items()})
generated_paths = schemathesis.openapi.from_dict(DOCUMENT)


@own_project.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    """A seeded campaign (or task) of the project, or the generated id."""
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    choices = {
        "campaign_id": st.sampled_from([*SEEDED, path_parameters.get("campaign_id")]),
        "task": st.sampled_from([*TASKS, path_parameters.get("task")]),
    }
    return st.fixed_dictionaries(
        {k: choices[k] if k in choices else st.just(v) for k, v in path_parameters.items()}
    )


class Served:
    def __init__(self, app: FastAPI, token: str):
        self.app = app
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """An app on its own store, with campaigns in lab/p1: one accepted, one cancelled."""
    app_settings = _settings(tmp_path / "data")
    service = Service(app_settings)
    try:
        for _ in range(2):
            SEEDED.append(
                service.submit(parse_document(SPEC), project="lab/p1", owner="dev-user")
            )
        service.cancel(SEEDED[-1])
    finally:
        service.close()
    token = DevIssuer(app_settings.data_dir).token(project="lab/p1", role="admin")
    try:
        yield Served(create_app(app_settings, run_campaigns=False), token)
    finally:
        SEEDED.clear()


def _call(case: schemathesis.Case, served: Served) -> None:
    case.call_and_validate(app=served.app, headers=served.headers, checks=CHECKS)


@own_project.parametrize()
@FUZZ
def test_own_project(case: schemathesis.Case, served: Served) -> None:
    _call(case, served)


@generated_paths.parametrize()
@FUZZ
def test_generated_paths(case: schemathesis.Case, served: Served) -> None:
    _call(case, served)
