"""The ParallelCluster v3 configuration, field by field (pure: no AWS, no pcluster)."""

from __future__ import annotations

import json

import pytest
import yaml

from cluster.provisioner import (
    ProvisionerConfigError,
    ProvisionerSettings,
    cluster_name,
    host_key_script,
    render_config,
    to_yaml,
)
from cluster.provisioner.config import PENDING_HOST_KEY_POLICY

SETTINGS = ProvisionerSettings(
    region="eu-north-1",
    service_cidr="10.20.0.0/16",
    cost_centres={"lab/p1": "CC-42"},
)


def _render(tier: str = "large", **kwargs: object) -> dict:
    return render_config(
        SETTINGS, "lab/p1", tier, subnet_id="subnet-0123456789abcdef0", key_name="k1", **kwargs
    )


def _fsx(config: dict) -> dict:
    (lustre,) = [s for s in config["SharedStorage"] if s["StorageType"] == "FsxLustre"]
    return lustre


@pytest.mark.parametrize("tier", sorted(SETTINGS.tiers))
def test_every_tier_renders_the_required_sections(tier: str):
    config = _render(tier)
    assert set(config) >= {"Region", "Image", "HeadNode", "Scheduling", "SharedStorage", "Tags"}
    assert config["Region"] == "eu-north-1"
    head = config["HeadNode"]
    assert head["Networking"]["SubnetId"] == "subnet-0123456789abcdef0"
    assert head["Ssh"] == {"KeyName": "k1", "AllowedIps": "10.20.0.0/16"}
    assert head["Dcv"] == {"Enabled": False}
    scheduling = config["Scheduling"]
    assert scheduling["Scheduler"] == "slurm"
    assert scheduling["SlurmSettings"]["Database"] == {
        "Uri": SETTINGS.accounting.uri,
        "UserName": SETTINGS.accounting.user_name,
        "PasswordSecretArn": SETTINGS.accounting.password_secret_arn,
    }
    queues = {q["Name"]: q for q in scheduling["SlurmQueues"]}
    assert list(queues) == [q.name for q in SETTINGS.tiers[tier].queues]
    for queue in queues.values():
        assert queue["Networking"]["SubnetIds"] == ["subnet-0123456789abcdef0"]
        assert queue["Networking"]["AssignPublicIp"] is False
        for resource in queue["ComputeResources"]:
            assert resource["MinCount"] == 0 and resource["MaxCount"] >= 1
            assert len(resource["Name"]) <= 25
    home = config["SharedStorage"][0]
    assert (home["StorageType"], home["MountDir"]) == ("Efs", "/home")
    tags = {t["Key"]: t["Value"] for t in config["Tags"]}
    assert tags["vlab"] == "lab" and tags["project"] == "p1"
    assert tags["orchestrator-project"] == "lab/p1" and tags["CostCentre"] == "CC-42"


def test_tiers_differ_in_queues():
    small = [q["Name"] for q in _render("small")["Scheduling"]["SlurmQueues"]]
    large = {q["Name"]: q for q in _render("large")["Scheduling"]["SlurmQueues"]}
    assert small == ["debug", "prod-batch"]
    assert {"debug", "prod-mpi", "prod-batch"} <= set(large)
    mpi = large["prod-mpi"]
    assert mpi["Networking"]["PlacementGroup"] == {"Enabled": True}
    assert {r["InstanceType"] for r in mpi["ComputeResources"]} == {
        "hpc7a.96xlarge",
        "c7i.48xlarge",
    }
    assert all(r["Efa"] == {"Enabled": True} for r in mpi["ComputeResources"])
    assert "Efa" not in large["prod-batch"]["ComputeResources"][0]
    assert large["prod-spot"]["CapacityType"] == "SPOT"


def test_lustre_persistent_2_with_two_data_repository_associations():
    fsx = _fsx(_render())["FsxLustreSettings"]
    assert fsx["DeploymentType"] == "PERSISTENT_2"
    project, scratch = fsx["DataRepositoryAssociations"]
    assert project["FileSystemPath"] == "/project"
    assert project["DataRepositoryPath"] == SETTINGS.lustre.project_data_bucket
    assert project["AutoImportPolicy"] == ["NEW", "CHANGED", "DELETED"]
    assert "AutoExportPolicy" not in project  # import only
    assert scratch["FileSystemPath"] == "/scratch"
    assert scratch["DataRepositoryPath"] == f"{SETTINGS.lustre.scratch_bucket}/lab/p1/"
    assert (
        scratch["AutoImportPolicy"] == scratch["AutoExportPolicy"] == ["NEW", "CHANGED", "DELETED"]
    )


def test_no_lustre_variant():
    config = _render(no_lustre=True)
    assert [s["StorageType"] for s in config["SharedStorage"]] == ["Efs"]
    assert "FsxLustre" not in to_yaml(config)


@pytest.mark.parametrize("no_lustre", [False, True])
def test_nothing_is_open_to_the_internet(no_lustre: bool):
    text = json.dumps(_render(no_lustre=no_lustre))
    assert "0.0.0.0/0" not in text and "::/0" not in text
    with pytest.raises(ValueError, match=r"0\.0\.0\.0/0"):
        ProvisionerSettings(service_cidr="0.0.0.0/0")


def test_yaml_round_trips_and_names_are_valid():
    config = _render()
    assert yaml.safe_load(to_yaml(config)) == config
    name = cluster_name("Lab_1/" + "p" * 100)
    assert name[0].isalpha() and len(name) <= 60
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert cluster_name("lab/p1") != cluster_name("lab/p2")


def test_unknown_tier_and_bad_project():
    with pytest.raises(ProvisionerConfigError, match="unknown tier 'huge'"):
        _render("huge")
    with pytest.raises(ProvisionerConfigError, match="vlab_id/project_id"):
        render_config(SETTINGS, "no-slash", "small")


def test_head_node_installs_the_host_key_with_a_narrow_permission():
    policy = "arn:aws:iam::123456789012:policy/orchestrator/pc-lab-p1-host-ed25519-read"
    name = cluster_name("lab/p1")
    head = _render(host_key_policy_arn=policy)["HeadNode"]
    script = f"s3://orchestrator-cluster-bootstrap/on-node-start/{name}/on-node-start.sh"
    assert head["CustomActions"] == {"OnNodeStart": {"Script": script}}
    assert head["Iam"] == {
        "S3Access": [  # read only, and only this cluster's own script
            {
                "BucketName": "orchestrator-cluster-bootstrap",
                "KeyName": f"on-node-start/{name}/*",
                "EnableWriteAccess": False,
            }
        ],
        "AdditionalIamPolicies": [{"Policy": policy}],  # GetSecretValue on its host key only
    }
    # the script the configuration points at is the one create uploads
    rendered = host_key_script(SETTINGS, name, "arn:aws:secretsmanager:x", "ssh-ed25519 AAAA")
    assert rendered.url == script
    # before create (`orchestrator cluster config`), the policy is a placeholder
    assert _render()["HeadNode"]["Iam"]["AdditionalIamPolicies"] == [
        {"Policy": PENDING_HOST_KEY_POLICY}
    ]
    for queue in _render()["Scheduling"]["SlurmQueues"]:  # compute nodes: no host key access
        assert "AdditionalIamPolicies" not in queue.get("Iam", {})
        assert "orchestrator-cluster-bootstrap" not in json.dumps(queue)


def test_bootstrap_url_must_be_s3():
    assert ProvisionerSettings(bootstrap_s3_url="s3://b/p").bootstrap_s3_url == "s3://b/p/"
    with pytest.raises(ValueError, match="s3://"):
        ProvisionerSettings(bootstrap_s3_url="https://b/p")
