"""The provisioner on real AWS APIs (moto's server over HTTP: Secrets Manager, EC2 key pairs,
DynamoDB), with ParallelCluster faked at our seam (tests/cluster/provisioner/fakes.py)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from cluster.provisioner import (
    ClusterNotFound,
    ClusterState,
    ProvisionerError,
    ProvisionerSettings,
    SubnetPool,
    SubnetPoolExhausted,
    create_tables,
)
from cluster.provisioner.keys import KeyStore
from tests.cluster.provisioner.fakes import FakePcluster
from tests.fixtures.aws import REGION, SUBNETS

pytestmark = pytest.mark.aws


def _pool(settings: ProvisionerSettings) -> SubnetPool:
    return SubnetPool(boto3.client("dynamodb", region_name=REGION), settings.subnet_table)


def _free(settings: ProvisionerSettings) -> set[str]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=settings.subnet_table)
    return {i["subnet_id"]["S"] for i in items["Items"] if i["status"]["S"] == "free"}


def test_create_keeps_the_key_in_secrets_manager_and_only_its_arn(
    provisioner, fake: FakePcluster, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="cluster")  # our logs (botocore logs bodies)
    record = provisioner.create("lab/p1", "small")
    assert record.state is ClusterState.PROVISIONING
    assert record.subnet_id in SUBNETS
    arn = record.key_secret_arn
    assert arn.startswith("arn:aws:secretsmanager:")
    secrets = boto3.client("secretsmanager", region_name=REGION)
    key_text = secrets.get_secret_value(SecretId=arn)["SecretString"]
    assert "OPENSSH PRIVATE KEY" in key_text
    tags = {t["Key"]: t["Value"] for t in secrets.describe_secret(SecretId=arn)["Tags"]}
    assert tags["orchestrator-project"] == "lab/p1" and tags["vlab"] == "lab"
    pairs = boto3.client("ec2", region_name=REGION).describe_key_pairs(KeyNames=[record.key_name])[
        "KeyPairs"
    ]
    assert len(pairs) == 1
    # The key went to pcluster only by name; the private key is nowhere but the secret.
    ((_name, config_yaml),) = fake.created
    assert record.key_name in config_yaml and record.subnet_id in config_yaml
    secret_body = key_text.splitlines()[1]
    for text in (
        config_yaml,
        str(record.to_dict()),
        caplog.text,
        str(provisioner.attempts("lab/p1")),
    ):
        assert secret_body not in text and "PRIVATE KEY" not in text
    ready = provisioner.status("lab/p1")
    assert ready.state is ClusterState.READY
    assert ready.connection == {
        "host": "10.20.1.5",
        "port": 22,
        "username": "ec2-user",
        "key_secret_arn": arn,
        "known_hosts": f"10.20.1.5 {ready.host_public_key}",
    }


def test_create_is_idempotent(provisioner, fake: FakePcluster):
    first = provisioner.create("lab/p1", "small")
    again = provisioner.create("lab/p1", "large")  # the existing cluster, not a second one
    assert (again.name, again.subnet_id, again.key_secret_arn, again.tier) == (
        first.name,
        first.subnet_id,
        first.key_secret_arn,
        "small",
    )
    assert len(fake.created) == 1
    with ThreadPoolExecutor(4) as pool:
        records = list(pool.map(lambda _: provisioner.create("lab/p2", "small"), range(4)))
    assert len({r.name for r in records}) == 1 and len(fake.created) == 2  # one cluster
    held = provisioner.status("lab/p2").subnet_id
    assert {r.subnet_id for r in records} <= {held, None}  # None: read before the claim


def test_concurrent_claims_never_share_a_subnet(aws: str, pc_settings: ProvisionerSettings):
    create_tables(pc_settings)
    subnets = [f"subnet-{i:017d}" for i in range(5)]
    _pool(pc_settings).add(*subnets)

    def claim(i: int) -> str | None:
        try:  # one client per thread, as separate service processes would have
            return _pool(pc_settings).claim(f"lab/p{i}")
        except SubnetPoolExhausted:
            return None

    with ThreadPoolExecutor(10) as pool:
        won = list(pool.map(claim, range(10)))
    claimed = [s for s in won if s is not None]
    assert sorted(claimed) == subnets  # each subnet exactly once; 5 claims got none
    with pytest.raises(SubnetPoolExhausted, match="every subnet of the pool"):
        _pool(pc_settings).claim("lab/late")
    winner = next(i for i, s in enumerate(won) if s is not None)
    assert _pool(pc_settings).claim(f"lab/p{winner}") == won[winner]  # held: the same one


class _AnswerLost:
    """A DynamoDB client whose first claim's answer is lost and sent again, as botocore does
    after a read timeout: the first attempt changed the item, the second finds it claimed."""

    def __init__(self, client: object):
        self._client = client
        self.resent = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def update_item(self, **request: object) -> object:
        if self.resent == 0:
            self.resent += 1
            self._client.update_item(**request)  # type: ignore[attr-defined]
        return self._client.update_item(**request)  # type: ignore[attr-defined]


def test_a_claim_whose_answer_was_lost_keeps_the_subnet_it_got(
    aws: str, pc_settings: ProvisionerSettings
):
    create_tables(pc_settings)
    _pool(pc_settings).add(*SUBNETS)
    client = _AnswerLost(boto3.client("dynamodb", region_name=REGION))
    got = SubnetPool(client, pc_settings.subnet_table).claim("lab/p1")  # type: ignore[arg-type]
    assert client.resent == 1
    assert _free(pc_settings) == set(SUBNETS) - {got}  # one subnet taken, the one returned
    assert _pool(pc_settings).held_by("lab/p1") == got


def test_exhausted_pool_is_a_recorded_failure(provisioner, pc_settings: ProvisionerSettings):
    provisioner.create("lab/p1", "small")
    provisioner.create("lab/p2", "small")
    third = provisioner.create("lab/p3", "small")
    assert third.state is ClusterState.FAILED and "every subnet" in third.reason
    (attempt,) = provisioner.attempts("lab/p3")
    assert (attempt.action, attempt.outcome) == ("create", "failed")
    assert "every subnet" in attempt.reason and attempt.finished_at
    # a failed record stays (no silent retry) until deleted; deleting it is immediate
    assert provisioner.create("lab/p3", "small").state is ClusterState.FAILED
    assert provisioner.delete("lab/p3").state is ClusterState.DELETED


def test_failed_create_is_recorded_with_its_reason(provisioner, fake: FakePcluster):
    fake.create_states = ["CREATE_IN_PROGRESS", "CREATE_FAILED"]
    provisioner.create("lab/p1", "small")
    failed = provisioner.status("lab/p1")
    assert failed.state is ClusterState.FAILED
    assert "CREATE_FAILED" in failed.reason and "timed out" in failed.reason
    fake.fail_create = RuntimeError("InsufficientInstanceCapacity in eu-north-1a")
    record = provisioner.create("lab/p2", "small")  # fails before any stack exists
    assert record.state is ClusterState.FAILED and "InsufficientInstanceCapacity" in record.reason
    (attempt,) = provisioner.attempts("lab/p2")
    assert attempt.outcome == "failed" and "InsufficientInstanceCapacity" in attempt.reason


def test_subnet_and_key_released_only_after_confirmed_deletion(
    provisioner, fake: FakePcluster, pc_settings: ProvisionerSettings
):
    fake.delete_polls = 2
    record = provisioner.create("lab/p1", "small")
    provisioner.status("lab/p1")
    subnet, key_name, arn = record.subnet_id, record.key_name, record.key_secret_arn
    deleting = provisioner.delete("lab/p1")
    assert deleting.state is ClusterState.DELETING
    ec2 = boto3.client("ec2", region_name=REGION)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for _ in range(1):  # DELETE_IN_PROGRESS: nothing released yet
        assert provisioner.status("lab/p1").state is ClusterState.DELETING
        assert subnet not in _free(pc_settings)
        assert ec2.describe_key_pairs(KeyNames=[key_name])["KeyPairs"]
        assert secrets.describe_secret(SecretId=arn)["ARN"] == arn
    gone = provisioner.status("lab/p1")  # pcluster no longer knows it: release
    assert gone.state is ClusterState.DELETED
    assert subnet in _free(pc_settings)
    assert not KeyStore(ec2, secrets, pc_settings.key_secret_prefix)._has_key_pair(key_name)
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.describe_secret(SecretId=arn)
    assert provisioner.delete("lab/p1").state is ClusterState.DELETED  # safe to repeat
    again = provisioner.create("lab/p1", "small")  # a new cluster after deletion
    assert again.state is ClusterState.PROVISIONING and again.key_secret_arn != arn
    actions = [(a.action, a.outcome) for a in provisioner.attempts("lab/p1")]
    assert actions == [("create", "succeeded"), ("delete", "succeeded"), ("create", "succeeded")]


def test_idle_teardown(provisioner, pc_settings: ProvisionerSettings):
    provisioner.create("lab/p1", "small")
    provisioner.create("lab/p2", "small")
    assert provisioner.status("lab/p1").state is provisioner.status("lab/p2").state
    now = datetime.now(UTC) + timedelta(seconds=pc_settings.idle_timeout + 5)
    recent = now - timedelta(seconds=60)
    assert provisioner.teardown_idle(now, {"lab/p2": recent}) == ["lab/p1"]
    assert provisioner.status("lab/p1").state in (ClusterState.DELETING, ClusterState.DELETED)
    assert provisioner.status("lab/p2").state is ClusterState.READY
    soon = datetime.now(UTC) + timedelta(seconds=10)
    assert provisioner.teardown_idle(soon, {}) == []  # young clusters are not idle


def test_unknown_project(provisioner):
    with pytest.raises(ClusterNotFound):
        provisioner.status("lab/none")
    with pytest.raises(ClusterNotFound):
        provisioner.delete("lab/none")


def test_a_ready_cluster_gives_its_service_instance_its_settings(
    provisioner, monkeypatch: pytest.MonkeyPatch
):
    """The cluster's Lustre comes from its CloudFormation stack. moto's CloudFormation does
    not make FSx file systems, so botocore's Stubber stands in for that one call."""
    from botocore.stub import Stubber

    from orchestrator.settings import Settings

    cloudformation = boto3.client("cloudformation", region_name=REGION)
    record = provisioner.create("lab/p1", "small")
    with Stubber(cloudformation) as stubber:
        stubber.add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    {
                        "LogicalResourceId": "HeadNodeRole",
                        "PhysicalResourceId": "role-1",
                        "ResourceType": "AWS::IAM::Role",
                        "LastUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                        "ResourceStatus": "CREATE_COMPLETE",
                    },
                    {
                        "LogicalResourceId": "lustre8d2b5ae9",
                        "PhysicalResourceId": "fs-0123456789abcdef0",
                        "ResourceType": "AWS::FSx::FileSystem",
                        "LastUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                        "ResourceStatus": "CREATE_COMPLETE",
                    },
                ]
            },
            {"StackName": record.name},
        )
        provisioner.backend._cloudformation = cloudformation
        ready = provisioner.status("lab/p1")
        env = provisioner.cluster_environment("lab/p1")  # found once, not asked again
    assert ready.fsx_file_system_id == "fs-0123456789abcdef0"
    assert env == {
        "ORCHESTRATOR_CLUSTER__KIND": "slurm",
        "ORCHESTRATOR_CLUSTER__SSH__HOST": "10.20.1.5",
        "ORCHESTRATOR_CLUSTER__SSH__PORT": "22",
        "ORCHESTRATOR_CLUSTER__SSH__USERNAME": "ec2-user",
        "ORCHESTRATOR_CLUSTER__SSH__KEY_SECRET_ARN": ready.key_secret_arn,
        "ORCHESTRATOR_CLUSTER__SSH__KNOWN_HOSTS": f"10.20.1.5 {ready.host_public_key}",
        "ORCHESTRATOR_CLUSTER__FSX__FILE_SYSTEM_ID": "fs-0123456789abcdef0",
        "ORCHESTRATOR_CLUSTER__FSX__MOUNT_DIR": "/lustre",
    }
    for name, value in env.items():  # the service takes them as they are
        monkeypatch.setenv(name, value)
    cluster = Settings().cluster
    assert cluster.kind == "slurm" and cluster.ssh.host == "10.20.1.5"
    assert cluster.fsx.file_system_id == "fs-0123456789abcdef0"


def test_the_environment_of_a_cluster_that_is_not_ready_is_refused(provisioner, fake: FakePcluster):
    fake.create_states = ["CREATE_IN_PROGRESS"]  # it stays provisioning
    provisioner.create("lab/p1", "small")
    with pytest.raises(ProvisionerError, match="not ready"):
        provisioner.cluster_environment("lab/p1")
