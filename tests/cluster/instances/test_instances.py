"""A service instance per project: a real `orchestrator serve` subprocess, and ECS tasks on
moto's server (a container instance registered first, as ECS needs one for EC2 tasks)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import httpx
import pytest

from cluster.instances import EcsInstances, LocalInstances
from cluster.instances.base import PROJECT_TAG, PROJECTS_ENV
from tests.fixtures.aws import REGION


def test_local_instance_serves_its_project_and_stops_by_pid(tmp_path: Path):
    handler = LocalInstances(
        tmp_path / "instances",
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
        command = Path(f"/proc/{instance.id}/cmdline").read_bytes().split(b"\0")
        assert command[-9:-5] == [b"--role", b"instance", b"--project", b"lab/p1"]
    finally:
        assert handler.stop("lab/p1") is True
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{instance.url}/healthz")
    assert not Path(f"/proc/{instance.id}").exists() or handler.find("lab/p1") is None
    assert handler.stop("lab/p1") is False  # safe to repeat


@pytest.fixture
def ecs(aws: str):
    client = boto3.client("ecs", region_name=REGION)
    client.create_cluster(clusterName="orchestrator")
    client.register_task_definition(
        family="orchestrator",
        containerDefinitions=[
            {"name": "orchestrator", "image": "orchestrator:latest", "memory": 512, "cpu": 256}
        ],
    )
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    document = {"instanceId": ec2_id, "region": REGION, "instanceType": "t3.large"}
    client.register_container_instance(
        cluster="orchestrator", instanceIdentityDocument=json.dumps(document)
    )
    return client


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
