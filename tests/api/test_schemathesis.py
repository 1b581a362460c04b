"""Property-based tests of the REST API from its own `/openapi.json` (Schemathesis).

Every documented operation is called with generated inputs and a valid admin token of
`lab/p1`, in two ways:

- `test_own_project`: `vlab_id`/`project_id` are pinned to the token's project (an explicit
  override, applied in every phase) and `campaign_id`/`task` are either one of the campaigns
  (tasks) seeded in that project or the generated value (a hook), so the requests get past
  the project check into the routes;
- `test_generated_paths`: every path parameter is generated (other projects answer 404,
  malformed ids 422).

Whatever the input, the app must not answer 5xx (`not_a_server_error`). The responses it
documents must also match their schemas and headers, and unsupported methods must answer 405
with an `Allow` naming every method of the path. Not checked, because the app deliberately
differs from its OpenAPI document: `status_code_conformance` (400/401/403/404/405/409/413
are not declared per operation), `content_type_conformance` (errors are
`application/problem+json`, the document only declares FastAPI's `application/json` 422),
`positive_data_acceptance` (a schema-valid `{}` spec or opaque cursor can still be rejected)
and `negative_data_rejection` (unknown query parameters are ignored; the hook may replace an
invalid id by a valid one).

`test_known_server_errors` replays inputs that once answered 500 (out-of-range integers,
malformed cursors): each must now get a problem answer that is not a server error.

The app runs without its background runner, in-process over Schemathesis' ASGI transport:
Schemathesis runs the app's lifespan (which sets `app.state.context`) on the first call and
its pytest plugin ends it when the test ends. Every request asks for `application/json`, so
`/events` never turns into a `text/event-stream` (with no runner a campaign never ends, nor
would its stream). Generation is derandomized: a run is reproducible, and CI is not flaky.
"""

from __future__ import annotations

import base64
import json
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
from schemathesis.checks import (
    allow_header_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
)

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
TOO_BIG = 2**63  # one past SQLite's INTEGER range
TASKS = ["sq:0", "sq:3", "sq:4", "sq", "total", "total:0", "nope"]
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
    allow_header_conformance,
]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

# ids of the campaigns seeded in lab/p1 for the running test (see `served`)
SEEDED: list[str] = []


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
own_project.config.update(parameters={f"path.{name}": v for name, v in PROJECT.items()})
generated_paths = schemathesis.openapi.from_dict(DOCUMENT)


@own_project.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    """A campaign (task) seeded in the project, or the generated id."""
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

    def call(self, case: schemathesis.Case) -> None:
        case.call_and_validate(app=self.app, headers=self.headers, checks=CHECKS)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """An app on its own store, with two campaigns in lab/p1: one accepted, one cancelled."""
    app_settings = _settings(tmp_path / "data")
    service = Service(app_settings)
    try:
        for _ in range(2):
            SEEDED.append(service.submit(parse_document(SPEC), project="lab/p1", owner="dev-user"))
        service.cancel(SEEDED[-1])
    finally:
        service.close()
    token = DevIssuer(app_settings.data_dir).token(project="lab/p1", role="admin")
    try:
        yield Served(create_app(app_settings, run_campaigns=False), token)
    finally:
        SEEDED.clear()


@own_project.parametrize()
@FUZZ
def test_own_project(case: schemathesis.Case, served: Served) -> None:
    served.call(case)


@generated_paths.parametrize()
@FUZZ
def test_generated_paths(case: schemathesis.Case, served: Served) -> None:
    served.call(case)


# ------------------------------------------------------------------ known server errors
BASE = "/v1/projects/{vlab_id}/{project_id}/campaigns"


def _cursor(value: Any) -> str:
    """A well-formed cursor (base64url JSON, as api/routers/_cursor.py encodes them)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _known(
    path: str, query: dict[str, Any], raises: type[Exception], why: str, **path_parameters: str
) -> Any:
    return pytest.param(
        path,
        query,
        path_parameters,
        id=why.split(":")[0],
    )


@pytest.mark.parametrize(
    ("path", "query", "extra_path"),
    [
        # found by Schemathesis (fuzzing GET .../events with random seeds)
        _known(
            f"{BASE}/{{campaign_id}}/events",
            {"after": TOO_BIG},
            OverflowError,
            "events-after-overflow: `after` has no upper bound; SQLite rejects it",
        ),
        # found by reading the routes, then confirmed here: the opaque cursors are decoded
        # but their shape and range are never checked
        _known(
            BASE,
            {"cursor": _cursor(5)},
            TypeError,
            "campaigns-cursor-not-a-list: tuple(5)",
        ),
        _known(
            BASE,
            {"cursor": _cursor([1])},
            ValueError,
            "campaigns-cursor-short: `created, cid = before` unpacks one value",
        ),
        _known(
            BASE,
            {"cursor": _cursor([TOO_BIG, "x"])},
            OverflowError,
            "campaigns-cursor-overflow: SQLite rejects the integer",
        ),
        _known(
            f"{BASE}/{{campaign_id}}/tasks",
            {"cursor": _cursor(["sq"])},
            IndexError,
            "tasks-cursor-short: after[1]",
        ),
        _known(
            f"{BASE}/{{campaign_id}}/tasks/{{task}}/logs",
            {},
            OverflowError,
            "logs-point-overflow: the point is looked up before its range is checked",
            task=f"sq:{TOO_BIG}",
        ),
    ],
)
def test_known_server_errors(
    served: Served, path: str, query: dict[str, Any], extra_path: dict[str, str]
) -> None:
    path_parameters = {**PROJECT, **extra_path}
    if "{campaign_id}" in path:
        path_parameters["campaign_id"] = SEEDED[0]
    case = own_project[path]["GET"].Case(path_parameters=path_parameters, query=query)
    served.call(case)
