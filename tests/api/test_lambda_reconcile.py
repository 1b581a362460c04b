"""The front door on Lambda brings projects up from a schedule: EventBridge's scheduled
events fed to the real handler, with the real `parallelcluster` provisioner and ECS
instances on moto's server. Faked: ParallelCluster itself, at our seam (`PclusterAdapter`,
tests/cluster/provisioner/fakes.py): it needs real CloudFormation and EC2."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest

import cluster.provisioner
from api.lambda_handler import FrontDoorHandler, is_scheduled
from cluster.provisioner import ProvisionerSettings
from orchestrator.platform.front_door import bring_up_lock
from orchestrator.platform.settings import EcsInstanceSettings, PlatformSettings
from orchestrator.platform.step import BUSY, CREATED, FAILED, READY, RUNNING, WAITING
from orchestrator.settings import AuthSettings, Settings
from orchestrator.store import Store
from tests.api.jwks_server import JwksServer
from tests.api.test_auth import SigningKey, rsa_key
from tests.api.test_lambda_handler import ISSUER, SPEC, answer, event, sign
from tests.cluster.provisioner.fakes import FakePcluster

pytestmark = pytest.mark.aws

# as EventBridge sends it for a rule with a schedule expression
SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-30T01:00:00Z",
    "region": "eu-north-1",
    "resources": ["arn:aws:events:eu-north-1:123456789012:rule/orchestrator-reconcile"],
    "detail": {},
}


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("lambda-reconcile")


@pytest.fixture
def keycloak(key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([key.jwk()]) as server:
        yield server


@pytest.fixture
def handler(
    app_settings: Settings,
    keycloak: JwksServer,
    ecs: Any,
    provisioner: Any,
    pc_settings: ProvisionerSettings,
    fake: FakePcluster,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FrontDoorHandler]:
    # the handler opens its provisioner from settings: the same one, ParallelCluster faked
    monkeypatch.setattr(
        cluster.provisioner,
        "open_provisioner",
        functools.partial(cluster.provisioner.open_provisioner, adapter=fake),
    )
    settings = app_settings.model_copy(
        update={
            "auth": AuthSettings(jwks_url=keycloak.url, issuer=ISSUER, dev_issuer="forbidden"),
            "provisioner": pc_settings,
            "platform": PlatformSettings(
                instances="ecs",
                ecs=EcsInstanceSettings(task_definition="orchestrator", launch_type="EC2"),
                cluster_timeout=600,
            ),
        }
    )
    made = FrontDoorHandler(settings)
    yield made
    made.close()


def _stages(handler: FrontDoorHandler, token: str, path: str) -> list[str]:
    status, page = answer(handler(event("GET", f"{path}/events", token=token), None))
    assert status == 200, page
    return [e["state"] for e in page["items"] if e["kind"] == "instance"]


def _submit(handler: FrontDoorHandler, token: str, project: str) -> str:
    status, body = answer(
        handler(
            event(
                "POST",
                f"/v1/projects/{project}/campaigns",
                token=token,
                body=json.dumps(SPEC).encode(),
            ),
            None,
        )
    )
    assert status == 201, body
    return f"/v1/projects/{project}/campaigns/{body['id']}"


def test_scheduled_events_bring_a_project_up_one_stage_at_a_time(
    handler: FrontDoorHandler, key: SigningKey, ecs: Any, fake: FakePcluster
) -> None:
    assert is_scheduled(SCHEDULED) and is_scheduled({"orchestrator": "reconcile"})
    assert handler(SCHEDULED, None) == {"reconciled": {}}  # nothing to do: nothing done
    token = sign(key, "/proj/lab/p1/member")
    path = _submit(handler, token, "lab/p1")
    assert _stages(handler, token, path) == []  # a request starts nothing on Lambda
    assert ecs.list_tasks(cluster="orchestrator")["taskArns"] == []

    fake.create_states = ["CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert handler(SCHEDULED, None) == {"reconciled": {"lab/p1": CREATED}}
    assert [name for name, _ in fake.created] == [fake.created[0][0]]
    assert _stages(handler, token, path) == ["provisioning"]
    assert handler(SCHEDULED, None) == {"reconciled": {"lab/p1": WAITING}}
    assert _stages(handler, token, path) == ["provisioning"]  # no event per schedule
    assert ecs.list_tasks(cluster="orchestrator")["taskArns"] == []

    # the cluster is ready: the instance is started with its cluster's settings
    done = handler(SCHEDULED, None)["reconciled"]["lab/p1"]
    assert done == READY  # moto's tasks run at once
    (task_arn,) = ecs.list_tasks(cluster="orchestrator")["taskArns"]
    task = ecs.describe_tasks(cluster="orchestrator", tasks=[task_arn])["tasks"][0]
    (override,) = task["overrides"]["containerOverrides"]
    names = {pair["name"]: pair["value"] for pair in override["environment"]}
    assert names["ORCHESTRATOR_CLUSTER__KIND"] == "slurm"
    assert names["ORCHESTRATOR_AUTH__JWKS_URL"] == handler._app.state.context.settings.auth.jwks_url
    assert "ORCHESTRATOR_DB_URL" not in names
    assert _stages(handler, token, path) == ["provisioning", "starting", "ready"]

    assert handler(SCHEDULED, None) == {"reconciled": {"lab/p1": RUNNING}}
    assert len(ecs.list_tasks(cluster="orchestrator")["taskArns"]) == 1  # not a second one
    assert _stages(handler, token, path) == ["provisioning", "starting", "ready"]


def test_a_cluster_that_fails_fails_its_waiting_campaigns_with_the_reason(
    handler: FrontDoorHandler, key: SigningKey, ecs: Any, fake: FakePcluster
) -> None:
    token = sign(key, "/proj/lab/p2/member")
    path = _submit(handler, token, "lab/p2")
    fake.create_states = ["CREATE_IN_PROGRESS", "CREATE_FAILED"]
    assert handler(SCHEDULED, None) == {"reconciled": {"lab/p2": CREATED}}
    assert handler(SCHEDULED, None) == {"reconciled": {"lab/p2": FAILED}}
    status, body = answer(handler(event("GET", path, token=token), None))
    assert status == 200 and body["state"] == "failed"
    assert "Cluster creation timed out" in body["message"]
    assert ecs.list_tasks(cluster="orchestrator")["taskArns"] == []
    assert handler(SCHEDULED, None) == {"reconciled": {}}  # nothing waits any more

    # new work: the failed cluster of before is deleted, then created afresh
    fake.create_states = ["CREATE_COMPLETE"]
    again = _submit(handler, token, "lab/p2")
    assert handler(SCHEDULED, None)["reconciled"] == {"lab/p2": "failed cluster deleted"}
    assert _stages(handler, token, again) == []
    passes = [handler(SCHEDULED, None)["reconciled"]["lab/p2"] for _ in range(3)]
    assert READY in passes, passes
    assert _stages(handler, token, again)[-1] == "ready"


def test_a_project_another_front_door_brings_up_is_left_to_it(
    handler: FrontDoorHandler, key: SigningKey, ecs: Any, app_settings: Settings
) -> None:
    token = sign(key, "/proj/lab/p3/member")
    path = _submit(handler, token, "lab/p3")
    other = Store(app_settings.database_url)  # another front door on the same store
    with other.try_lock(bring_up_lock("lab/p3")) as held:
        assert held
        assert handler(SCHEDULED, None) == {"reconciled": {"lab/p3": BUSY}}
        assert _stages(handler, token, path) == []
    other.close()
    assert handler(SCHEDULED, None) == {"reconciled": {"lab/p3": CREATED}}
