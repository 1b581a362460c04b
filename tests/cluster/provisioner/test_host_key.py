"""The head node's SSH host key: made at create, installed by the head node's OnNodeStart
script, verified by the service. Real AWS APIs (moto's server over HTTP: Secrets Manager, IAM,
S3, DynamoDB, EC2 key pairs); ParallelCluster faked at our seam
(tests/cluster/provisioner/fakes.py), since it cannot run here."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

import asyncssh
import boto3
import pytest
import yaml
from fastapi.testclient import TestClient

from cluster.provisioner import (
    ClusterState,
    HostKeyStore,
    Provisioner,
    ProvisionerError,
    ProvisionerSettings,
    host_key_script,
    known_hosts_line,
    open_provisioner,
)
from cluster.provisioner.bootstrap import HOST_KEY_PATH
from cluster.provisioner.settings import LocalBackendSettings
from cluster.settings import ClusterSettings, SSHSettings
from cluster.ssh import SSHTransport, _known_hosts
from orchestrator.settings import Settings
from tests.api.test_hpc_cluster import EXPORTS, service_token
from tests.cluster.provisioner.fakes import FakePcluster
from tests.fixtures.api import bearer
from tests.fixtures.aws import BOOTSTRAP_BUCKET, REGION

HEAD_NODE_IP = "10.20.1.5"  # what the fake's describe reports as headNode.privateIpAddress


def _secret(arn: str) -> str:
    return boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=arn)[
        "SecretString"
    ]


def _script(url: str) -> str:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"]
    return str(body.read().decode())


def _policy_document(arn: str) -> dict:
    iam = boto3.client("iam", region_name=REGION)
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
    raw = document["Document"]
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


@pytest.mark.aws
def test_create_renders_the_on_node_start_action_and_a_policy_for_that_secret_only(
    provisioner: Provisioner, fake: FakePcluster
):
    record = provisioner.create("lab/p1", "small")
    assert record.state is ClusterState.PROVISIONING
    ((_name, config_yaml),) = fake.created
    head = yaml.safe_load(config_yaml)["HeadNode"]
    script_url = head["CustomActions"]["OnNodeStart"]["Script"]
    assert script_url == (
        f"s3://{BOOTSTRAP_BUCKET}/orchestrator/on-node-start/{record.name}/on-node-start.sh"
    )
    assert head["Iam"]["AdditionalIamPolicies"] == [{"Policy": record.host_key_policy_arn}]
    assert head["Iam"]["S3Access"] == [
        {
            "BucketName": BOOTSTRAP_BUCKET,
            "KeyName": f"orchestrator/on-node-start/{record.name}/*",
            "EnableWriteAccess": False,
        }
    ]
    assert "0.0.0.0/0" not in config_yaml and "::/0" not in config_yaml
    # the policy: read exactly this secret, nothing else
    assert record.host_key_policy_arn.startswith("arn:aws:iam::")
    assert ":policy/orchestrator/" in record.host_key_policy_arn
    assert _policy_document(record.host_key_policy_arn)["Statement"] == [
        {
            "Sid": "ReadOwnSshHostKey",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": record.host_key_secret_arn,
        }
    ]
    # the secret sits next to the user key, tagged the same way
    secrets = boto3.client("secretsmanager", region_name=REGION)
    host_secret = secrets.describe_secret(SecretId=record.host_key_secret_arn)
    user_secret = secrets.describe_secret(SecretId=record.key_secret_arn)
    assert host_secret["Name"].startswith("orchestrator/cluster-keys/")
    assert host_secret["Name"] != user_secret["Name"]
    tags = {t["Key"]: t["Value"] for t in host_secret["Tags"]}
    assert tags == {t["Key"]: t["Value"] for t in user_secret["Tags"]}
    assert tags["orchestrator-project"] == "lab/p1"
    # the uploaded script installs the key of that secret
    script = _script(script_url)
    assert f"SECRET_ARN={record.host_key_secret_arn}\n" in script
    assert 'aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SECRET_ARN"' in (
        script
    )
    assert f"REGION={REGION}\n" in script
    assert f"KEY={HOST_KEY_PATH}\n" in script
    assert 'install -o root -g root -m 600 "$work/key" "$KEY"' in script
    assert 'install -o root -g root -m 644 "$work/key.pub" "$KEY.pub"' in script
    assert "systemctl restart sshd" in script
    assert f"EXPECTED='{record.host_public_key}'" in script
    assert "set -x" not in script


@pytest.mark.aws
def test_the_private_host_key_is_only_in_its_secret(
    provisioner: Provisioner,
    fake: FakePcluster,
    caplog: pytest.LogCaptureFixture,
    http: TestClient,
    app_settings: Settings,
):
    caplog.set_level(logging.DEBUG, logger="cluster")  # our logs (botocore logs bodies)
    record = provisioner.create("lab/p1", "small")
    ready = provisioner.status("lab/p1")
    private = _secret(record.host_key_secret_arn)
    assert "OPENSSH PRIVATE KEY" in private
    http.app.state.provisioner = provisioner  # type: ignore[attr-defined]
    api_output = http.get(
        "/v1/projects/lab/p1/hpc-cluster", headers=bearer(service_token(app_settings))
    )
    assert api_output.status_code == 200, api_output.text
    assert api_output.json()["connection"]["known_hosts"] == ready.known_hosts
    body = private.splitlines()[1]
    ((_name, config_yaml),) = fake.created
    for text in (
        config_yaml,
        json.dumps(ready.to_dict()),
        caplog.text,
        str(provisioner.attempts("lab/p1")),
        api_output.text,
        _script(yaml.safe_load(config_yaml)["HeadNode"]["CustomActions"]["OnNodeStart"]["Script"]),
        json.dumps(provisioner.ssh_settings("lab/p1").model_dump(mode="json")),
    ):
        assert body not in text and "PRIVATE KEY" not in text


@pytest.mark.aws
def test_known_hosts_line_parses_and_matches_the_stored_host_key(provisioner: Provisioner):
    record = provisioner.create("lab/p1", "small")
    assert record.known_hosts is None  # no address yet
    ready = provisioner.status("lab/p1")
    assert ready.state is ClusterState.READY
    line = ready.known_hosts
    assert line == f"{HEAD_NODE_IP} {ready.host_public_key}"
    assert line.startswith(f"{HEAD_NODE_IP} ssh-ed25519 AAAA")
    assert ready.connection["known_hosts"] == line
    stored = asyncssh.import_private_key(_secret(ready.host_key_secret_arn))
    # as asyncssh parses it, and as SSHTransport does (a line, not a path)
    for known in (asyncssh.import_known_hosts(line), _known_hosts(line)):
        host_keys = known.match(HEAD_NODE_IP, HEAD_NODE_IP, 22)[0]  # by name and by address
        assert {k.export_public_key() for k in host_keys} == {stored.export_public_key()}
        assert not known.match("10.20.1.6", "10.20.1.6", 22)[0]  # only that head node


@pytest.mark.aws
def test_ssh_settings_of_a_ready_cluster_validate(provisioner: Provisioner):
    provisioner.create("lab/p1", "small")
    record = provisioner.records.get("lab/p1")
    with pytest.raises(ProvisionerError, match="not ready"):
        record.ssh_settings()
    ready = provisioner.status("lab/p1")
    fields = ready.ssh_settings()
    assert fields == {
        "host": HEAD_NODE_IP,
        "port": 22,
        "username": "ec2-user",
        "key_secret_arn": ready.key_secret_arn,
        "known_hosts": ready.known_hosts,
    }
    settings = SSHSettings.model_validate(fields)
    assert settings == provisioner.ssh_settings("lab/p1")
    ClusterSettings(kind="slurm", ssh=settings)  # what the service's slurm cluster needs
    transport = SSHTransport(settings)  # accepts it (connects lazily)
    try:
        assert transport.target == f"ec2-user@{HEAD_NODE_IP}:22"
    finally:
        transport.close()


@pytest.mark.aws
def test_both_secrets_go_only_after_the_cluster_is_confirmed_gone(
    provisioner: Provisioner, fake: FakePcluster
):
    fake.delete_polls = 2
    provisioner.create("lab/p1", "small")
    record = provisioner.status("lab/p1")
    secrets = boto3.client("secretsmanager", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    arns = (record.key_secret_arn, record.host_key_secret_arn)
    script_url = yaml.safe_load(fake.created[0][1])["HeadNode"]["CustomActions"]["OnNodeStart"][
        "Script"
    ]
    assert provisioner.delete("lab/p1").state is ClusterState.DELETING
    assert provisioner.status("lab/p1").state is ClusterState.DELETING  # DELETE_IN_PROGRESS
    for arn in arns:  # the fake still reports the cluster: nothing released
        assert secrets.describe_secret(SecretId=arn)["ARN"] == arn
    assert iam.get_policy(PolicyArn=record.host_key_policy_arn)["Policy"]
    assert _script(script_url)
    gone = provisioner.status("lab/p1")  # the fake no longer knows it
    assert gone.state is ClusterState.DELETED
    for arn in arns:
        with pytest.raises(secrets.exceptions.ResourceNotFoundException):
            secrets.describe_secret(SecretId=arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_policy(PolicyArn=record.host_key_policy_arn)
    with pytest.raises(boto3.client("s3").exceptions.NoSuchKey):
        _script(script_url)
    assert (gone.host_key_secret_arn, gone.host_key_policy_arn, gone.known_hosts) == (None,) * 3
    assert provisioner.delete("lab/p1").state is ClusterState.DELETED  # safe to repeat
    again = provisioner.create("lab/p1", "small")
    assert again.host_key_secret_arn != record.host_key_secret_arn
    assert again.host_public_key != record.host_public_key  # a new cluster, a new host key


@pytest.mark.aws
def test_host_key_store_is_safe_to_repeat(aws: str, pc_settings: ProvisionerSettings):
    store = HostKeyStore(
        boto3.client("secretsmanager", region_name=REGION),
        boto3.client("iam", region_name=REGION),
        pc_settings.key_secret_prefix,
        pc_settings.host_key_policy_path,
    )
    tags = {"orchestrator-project": "lab/p1"}
    first = store.ensure("pc-x", tags)
    assert store.ensure("pc-x", tags) == first  # a head node may already run with it
    policy = store.grant("pc-x", first.secret_arn, tags)
    assert store.grant("pc-x", first.secret_arn, tags) == policy
    store.delete("pc-x")
    store.delete("pc-x")
    assert store.ensure("pc-x", tags).public_key != first.public_key


def test_local_back_end_hands_out_the_local_slurm_known_hosts(tmp_path: Path):
    settings = ProvisionerSettings(local=LocalBackendSettings(exports=EXPORTS))
    provisioner = open_provisioner(settings, data_dir=tmp_path)
    record = provisioner.create("lab/p1")
    assert record.known_hosts == "/state/known_hosts" == record.connection["known_hosts"]
    ssh = provisioner.ssh_settings("lab/p1")
    assert (ssh.host, ssh.port, ssh.username) == ("127.0.0.1", 2222, "root")
    assert (ssh.known_hosts, str(ssh.key_file)) == ("/state/known_hosts", "/state/id_ed25519")


def test_known_hosts_line_names_other_ports_as_openssh_does():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF0 comment"
    line = known_hosts_line("10.0.0.1", 22, key)
    assert line == "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF0"
    assert known_hosts_line("h", 2222, key).startswith("[h]:2222 ssh-ed25519 ")


@pytest.mark.skipif(os.geteuid() != 0, reason="the script installs root-owned files")
@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_the_script_installs_the_key_it_fetches(tmp_path: Path, pc_settings: ProvisionerSettings):
    """Run the rendered script with `aws` and `systemctl` stubbed (no AWS, no sshd here) and
    the key's path moved into a temporary folder."""
    from cluster.provisioner.keys import new_ed25519

    private, public = new_ed25519()
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:keys/pc-x-host-ed25519-AbCdEf"
    script = host_key_script(pc_settings, "pc-x", arn, public)
    key_path = tmp_path / "etc" / "ssh_host_ed25519_key"
    key_path.parent.mkdir()
    text = script.text.replace(f"KEY={HOST_KEY_PATH}\n", f"KEY={key_path}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "secret").write_text(private)
    calls = tmp_path / "calls"
    (bin_dir / "aws").write_text(f'#!/bin/sh\necho "aws $*" >> {calls}\ncat {tmp_path}/secret\n')
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> {calls}\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", text], env=env, capture_output=True, text=True, check=False
        )

    done = run()
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_text() == private
    assert key_path.with_suffix(".pub").read_text().split()[:2] == public.split()[:2]
    logged = calls.read_text()
    assert f"--secret-id {arn}" in logged and f"--region {REGION}" in logged
    assert "systemctl restart sshd" in logged
    assert private.splitlines()[1] not in done.stdout + done.stderr
    # a secret holding another key is refused, and nothing is installed
    key_path.unlink()
    (tmp_path / "secret").write_text(new_ed25519()[0])
    refused = run()
    assert refused.returncode == 1 and "not the one the provisioner recorded" in refused.stderr
    assert not key_path.exists()


@pytest.mark.aws
def test_a_missing_bootstrap_bucket_fails_create_and_still_deletes(
    provisioner: Provisioner, pc_settings: ProvisionerSettings
):
    provisioner.settings = pc_settings.model_copy(update={"bootstrap_s3_url": "s3://no-bucket/"})
    failed = provisioner.create("lab/p1", "small")
    assert failed.state is ClusterState.FAILED and "NoSuchBucket" in failed.reason
    secret_arn = failed.host_key_secret_arn
    assert provisioner.delete("lab/p1").state is ClusterState.DELETED  # nothing leaks
    with pytest.raises(boto3.client("secretsmanager").exceptions.ResourceNotFoundException):
        boto3.client("secretsmanager", region_name=REGION).describe_secret(SecretId=secret_arn)
