"""A service instance per project: a real `orchestrator serve` subprocess, and ECS tasks on
moto's server (a container instance registered first, as ECS needs one for EC2 tasks)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import httpx
import pytest

from cluster.instances import EcsInstances, InstanceStartError, LocalInstances
from cluster.instances.base import PROJECT_TAG, PROJECTS_ENV
from cluster.instances.ecs import task_url
from orchestrator.platform.settings import INSTANCE_ENV
from tests.fixtures.aws import REGION


def test_local_instance_serves_its_project_and_stops_by_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # the front door's own secrets and settings, which its instances must not inherit
    monkeypatch.setenv("ORCHESTRATOR_DB_URL", "postgresql://front:door-secret@db/orchestrator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "front-door-aws-secret")
    monkeypatch.setenv("ORCHESTRATOR_PROVISIONER__KIND", "parallelcluster")
    monkeypatch.setenv("ORCHESTRATOR_ENGINE__MAX_IN_FLIGHT", "77")  # an instance setting
    monkeypatch.setenv("SITE_NAME", "named-by-the-site")
    handler = LocalInstances(
        tmp_path / "instances",
        inherit=[*INSTANCE_ENV, "SITE_*"],
        env={
            "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
            "ORCHESTRATOR_CONFIG": "/nonexistent",
            # an instance only checks tokens (keys fetched on first use): it signs none
            "ORCHESTRATOR_AUTH__JWKS_URL": "http://127.0.0.1:9/dev-issuer/jwks.json",
            "ORCHESTRATOR_AUTH__ISSUER": "orchestrator-dev-issuer",
        },
    )
    assert handler.find("lab/p1") is None
    instance = handler.start("lab/p1")
    try:
        assert instance.url is not None and instance.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{instance.url}/healthz").json() == {"status": "ok"}
        assert handler.start("lab/p1") == instance  # found, not a second process
        # another handler (e.g. after a restart) finds it through the pid file
        assert LocalInstances(tmp_path / "instances").find("lab/p1") == instance
        environ = Path(f"/proc/{instance.id}/environ").read_bytes().split(b"\0")
        assert f'{PROJECTS_ENV}=["lab/p1"]'.encode() in environ
        assert b"ORCHESTRATOR_ENGINE__MAX_IN_FLIGHT=77" in environ
        assert b"SITE_NAME=named-by-the-site" in environ
        assert b"PATH=" + os.environ["PATH"].encode() in environ
        names = {line.partition(b"=")[0] for line in environ}
        assert not names & {
            b"ORCHESTRATOR_DB_URL",
            b"AWS_SECRET_ACCESS_KEY",
            b"ORCHESTRATOR_PROVISIONER__KIND",
        }
        assert b"front-door-aws-secret" not in b"\0".join(environ)
        command = Path(f"/proc/{instance.id}/cmdline").read_bytes().split(b"\0")
        assert command[-9:-5] == [b"--role", b"instance", b"--project", b"lab/p1"]
    finally:
        assert handler.stop("lab/p1") is True
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{instance.url}/healthz")
    assert not Path(f"/proc/{instance.id}").exists() or handler.find("lab/p1") is None
    assert handler.stop("lab/p1") is False  # safe to repeat


@pytest.mark.aws
def test_ecs_instances_run_find_and_stop(ecs):
    handler = EcsInstances(
        ecs, cluster="orchestrator", task_definition="orchestrator", launch_type="EC2"
    )
    assert handler.find("lab/p1") is None
    first = handler.start("lab/p1", {"ORCHESTRATOR_CLUSTER__KIND": "slurm"})
    other = handler.start("lab/p2")
    assert first.id != other.id and first.kind == "ecs"
    assert handler.start("lab/p1").id == first.id  # found by startedBy and tag
    task = ecs.describe_tasks(cluster="orchestrator", tasks=[first.id], include=["TAGS"])["tasks"][
        0
    ]
    assert {"key": PROJECT_TAG, "value": "lab/p1"} in task["tags"]
    (override,) = task["overrides"]["containerOverrides"]
    assert override["name"] == "orchestrator"
    assert {"name": PROJECTS_ENV, "value": '["lab/p1"]'} in override["environment"]
    assert override["command"][:6] == [
        "orchestrator",
        "serve",
        "--role",
        "instance",
        "--project",
        "lab/p1",
    ]
    assert {"name": "ORCHESTRATOR_CLUSTER__KIND", "value": "slurm"} in override["environment"]
    assert handler.stop("lab/p1") is True
    assert handler.find("lab/p1") is None
    assert handler.find("lab/p2").id == other.id  # the other project's instance runs on
    assert handler.stop("lab/p1") is False


FRONT_DOOR_SECRETS = {
    "ORCHESTRATOR_DB_URL": "postgresql+psycopg://front_door:fd-db-password@db.internal/orch",
    "ORCHESTRATOR_AUTH__CLIENT_SECRET": "fd-client-secret",
    "AWS_SESSION_TOKEN": "fd-session-token",
}


def _overrides(ecs, task_arn: str) -> dict[str, str]:
    task = ecs.describe_tasks(cluster="orchestrator", tasks=[task_arn])["tasks"][0]
    (override,) = task["overrides"]["containerOverrides"]
    return {pair["name"]: pair["value"] for pair in override["environment"]}


@pytest.mark.aws
def test_ecs_instance_gets_its_cluster_environment_and_nothing_of_the_front_door(
    ecs, provisioner, monkeypatch: pytest.MonkeyPatch
):
    """The environment is the provisioner's own `cluster_environment` of a ready cluster
    (ParallelCluster faked at our seam, the rest on moto), given while the calling process
    holds secrets of its own: the task gets exactly its cluster and its project."""
    for name, value in FRONT_DOOR_SECRETS.items():
        monkeypatch.setenv(name, value)
    provisioner.create("lab/p1", "small", no_lustre=True)
    provisioner.status("lab/p1")  # ready
    environment = provisioner.cluster_environment("lab/p1")
    assert environment["ORCHESTRATOR_CLUSTER__SSH__KEY_SECRET_ARN"].startswith("arn:aws:")
    # a project's environment naming another project is overridden by its own
    environment_with_other = {**environment, PROJECTS_ENV: '["lab/p2"]'}
    handler = EcsInstances(
        ecs, cluster="orchestrator", task_definition="orchestrator", launch_type="EC2"
    )
    instance = handler.start("lab/p1", environment_with_other)
    assert _overrides(ecs, instance.id) == {**environment, PROJECTS_ENV: '["lab/p1"]'}
    described = json.dumps(
        ecs.describe_tasks(cluster="orchestrator", tasks=[instance.id], include=["TAGS"]),
        default=str,
    )
    definition = json.dumps(
        ecs.describe_task_definition(taskDefinition="orchestrator"), default=str
    )
    for value in FRONT_DOOR_SECRETS.values():
        assert value not in described and value not in definition
    assert ecs.list_task_definitions()["taskDefinitionArns"] == [
        ecs.describe_task_definition(taskDefinition="orchestrator")["taskDefinition"][
            "taskDefinitionArn"
        ]
    ]  # no new revision was registered


@pytest.mark.aws
@pytest.mark.parametrize(
    "name, value",
    [
        ("ORCHESTRATOR_DB_URL", "postgresql+psycopg://p1:p1-password@db.internal/orch"),
        ("ORCHESTRATOR_KG__PASSWORD", "kg-password"),
        ("ORCHESTRATOR_CLUSTER__SSH__PRIVATE_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----"),
        ("NEXUS_TOKEN", "nexus-token"),
    ],
)
def test_ecs_refuses_a_secret_in_the_task_overrides(ecs, name: str, value: str):
    handler = EcsInstances(
        ecs, cluster="orchestrator", task_definition="orchestrator", launch_type="EC2"
    )
    with pytest.raises(InstanceStartError, match=name) as refused:
        handler.start("lab/p1", {"ORCHESTRATOR_CLUSTER__KIND": "slurm", name: value})
    assert value not in str(refused.value)
    assert ecs.list_tasks(cluster="orchestrator")["taskArns"] == []  # nothing started
    # references to secrets are what to pass instead
    fine = {
        "ORCHESTRATOR_CLUSTER__SSH__KEY_SECRET_ARN": "arn:aws:secretsmanager:eu-north-1:1:secret:k",
        "ORCHESTRATOR_DB_URL": "postgresql+psycopg://p1@db.internal/orch",
    }
    assert handler.start("lab/p1", fine).kind == "ecs"


@pytest.mark.aws
def test_ecs_instance_on_fargate_in_private_subnets(ecs):
    """moto (5.2) fails on awsvpc task definitions, so the ENI's address is checked below on
    the document ECS answers; here, what is asked of ECS."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="instances", Description="x", VpcId=vpc)
    handler = EcsInstances(
        ecs,
        cluster="orchestrator",
        task_definition="orchestrator",
        subnets=[subnet],
        security_groups=[group["GroupId"]],
    )
    instance = handler.start("lab/p1")
    task = ecs.describe_tasks(cluster="orchestrator", tasks=[instance.id])["tasks"][0]
    assert task["launchType"] == "FARGATE"
    assert handler.find("lab/p1").id == instance.id
    assert handler.stop("lab/p1") is True and handler.find("lab/p1") is None


def test_an_ecs_task_is_reached_at_its_network_interfaces_private_address():
    """`describe_tasks` of a Fargate task, as ECS documents it (moto cannot make one)."""
    task = {
        "taskArn": "arn:aws:ecs:eu-north-1:123456789012:task/orchestrator/0123",
        "lastStatus": "RUNNING",
        "attachments": [
            {
                "id": "a-1",
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": "subnet-00000000000000001"},
                    {"name": "networkInterfaceId", "value": "eni-0123"},
                    {"name": "macAddress", "value": "0a:00:00:00:00:01"},
                    {"name": "privateDnsName", "value": "ip-10-30-1-17.internal"},
                    {"name": "privateIPv4Address", "value": "10.30.1.17"},
                ],
            }
        ],
    }
    assert task_url(task, 8000) == "http://10.30.1.17:8000"
    assert task_url({**task, "attachments": []}, 8000) is None  # not attached yet
    pending = [{**task["attachments"][0], "status": "PRECREATED", "details": []}]
    assert task_url({**task, "attachments": pending}, 8000) is None
