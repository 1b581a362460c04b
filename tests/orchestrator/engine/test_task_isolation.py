"""What a task prints reaches its logs (`orchestrator logs`, the logs route): a task that
dumps every environment it can see and the service's data folder shows neither the database
URL nor the issuer's key (the service's environment holds a fake of each for the test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster import open_compute
from cluster.scheduler.sandbox import namespaces_available
from orchestrator.service import Service
from tests.helpers import run, spec_doc

DB_URL = "postgresql+psycopg://svc:db-password-1234@db.internal/orch"
ENV_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
)
FILE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
)


@pytest.fixture
def exposed_service(service: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    monkeypatch.setenv("ORCHESTRATOR_DB_URL", DB_URL)
    monkeypatch.setenv("ORCHESTRATOR_AUTH__ISSUER_KEY", ENV_KEY)
    data = service.settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    (data / "dev-issuer-key.pem").write_text(FILE_KEY)
    yield service


def test_a_tasks_logs_show_no_secret(exposed_service: Service) -> None:
    service = exposed_service
    data = service.settings.data_dir
    settings = service.settings.cluster.model_copy(deep=True)
    settings.local.n_workers = 1
    settings.local.dashboard_address = None
    doc = spec_doc(
        "snoop",
        {
            "snoop": {
                "command": (
                    "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done; "
                    "cat {{ data }}/dev-issuer-key.pem {{ data }}/*.db; ls -la {{ data }}; "
                    "env"  # last: the logs keep the tail
                ),
                "with": {"data": str(data)},
            }
        },
    )
    with open_compute(settings) as compute:
        cid, state = run(service, compute, doc)
    assert state == "succeeded"
    logs = service.logs(cid, "snoop")
    assert "ORCHESTRATOR_OUTPUT_DIR=" in logs  # the dump did run
    assert "db-password-1234" not in logs and DB_URL not in logs
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in logs
    if namespaces_available():  # where the data folder can be hidden, it is
        assert "MIIEvgIBADANBgkqhkiG9w0BAQEFAASC" not in logs
        assert "dev-issuer-key.pem" not in logs.replace(f"{data}/dev-issuer-key.pem", "")
