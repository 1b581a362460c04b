"""The AWS ParallelCluster (v3) configuration of a project's cluster: a pure function of the
settings and (vlab, project, tier), as a dict, then YAML.

Nothing is open to 0.0.0.0/0: the head node's SSH is allowed from the service's CIDR only
(`HeadNode/Ssh/AllowedIps`), DCV is off, every node is in the claimed private subnet.

The head node's `CustomActions/OnNodeStart` installs the SSH host key the provisioner made
(bootstrap.py). ParallelCluster v3 takes extra IAM permissions for a node only as managed policy
ARNs (`Iam/AdditionalIamPolicies`) or bucket grants (`Iam/S3Access`); a whole `InstanceRole`
would replace the role ParallelCluster builds. So the head node gets one managed policy made for
its cluster, allowing `secretsmanager:GetSecretValue` on its own host key secret only, and
read access to its own script's S3 prefix only.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from cluster.provisioner.bootstrap import script_location, script_prefix
from cluster.provisioner.errors import ProvisionerConfigError
from cluster.provisioner.settings import ProvisionerSettings, QueueSpec

_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
PENDING_SUBNET = "subnet-claimed-at-create"
# The per-cluster policy that lets the head node read its host key exists only from create on.
PENDING_HOST_KEY_POLICY = "arn:aws:iam::000000000000:policy/host-key-policy-made-at-create"
# ParallelCluster: a name starts with a letter, has letters, digits and '-', at most 60 chars.
_NAME_LIMIT = 60
_ONE_CHANGE = ["NEW", "CHANGED", "DELETED"]


def split_project(project: str) -> tuple[str, str]:
    """ "vlab/project" -> ("vlab", "project"); ProvisionerConfigError when malformed."""
    vlab, sep, name = project.partition("/")
    if not sep or not _ID.match(vlab) or not _ID.match(name):
        raise ProvisionerConfigError(f"project must be 'vlab_id/project_id', not {project!r}")
    return vlab, name


def cluster_name(project: str) -> str:
    """A stable ParallelCluster name for the project: readable, and unique by its hash."""
    vlab, name = split_project(project)
    digest = hashlib.sha256(project.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", f"{vlab}-{name}".lower()).strip("-")
    slug = slug[: _NAME_LIMIT - len("pc--") - len(digest)].rstrip("-")
    return f"pc-{slug}-{digest}"


def key_pair_name(project: str) -> str:
    return f"orchestrator-{cluster_name(project)}"


def render_config(
    settings: ProvisionerSettings,
    project: str,
    tier: str,
    *,
    subnet_id: str = PENDING_SUBNET,
    key_name: str | None = None,
    host_key_policy_arn: str | None = None,
    no_lustre: bool = False,
) -> dict[str, Any]:
    """The cluster configuration (ParallelCluster v3 schema) for `project` at `tier`."""
    vlab, name = split_project(project)
    spec = settings.tiers.get(tier)
    if spec is None:
        known = ", ".join(sorted(settings.tiers))
        raise ProvisionerConfigError(f"unknown tier {tier!r} (known: {known})")
    scratch_prefix = f"{vlab}/{name}"
    config: dict[str, Any] = {
        "Region": settings.region,
        "Image": {"Os": settings.os},
        "Imds": {"ImdsSupport": "v2.0"},
        "HeadNode": _head_node(
            settings,
            spec.head_node_instance_type,
            subnet_id,
            key_name,
            project,
            host_key_policy_arn or PENDING_HOST_KEY_POLICY,
        ),
        "Scheduling": {
            "Scheduler": "slurm",
            "SlurmSettings": {
                "ScaledownIdletime": 10,
                "QueueUpdateStrategy": "DRAIN",
                "Database": {
                    "Uri": settings.accounting.uri,
                    "UserName": settings.accounting.user_name,
                    "PasswordSecretArn": settings.accounting.password_secret_arn,
                },
            },
            "SlurmQueues": [
                _queue(queue, subnet_id, settings, scratch_prefix) for queue in spec.queues
            ],
        },
        "SharedStorage": [_home(settings)],
        "Monitoring": {"Logs": {"CloudWatch": {"Enabled": True, "RetentionInDays": 30}}},
        "Tags": [
            {"Key": "vlab", "Value": vlab},
            {"Key": "project", "Value": name},
            {"Key": "orchestrator-project", "Value": project},
            {"Key": "CostCentre", "Value": settings.cost_centre(project)},
            {"Key": "ManagedBy", "Value": "workflow-orchestrator"},
        ],
    }
    if not no_lustre:
        config["SharedStorage"].append(_lustre(settings, scratch_prefix))
    return config


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _head_node(
    settings: ProvisionerSettings,
    instance_type: str,
    subnet_id: str,
    key_name: str | None,
    project: str,
    host_key_policy_arn: str,
) -> dict[str, Any]:
    networking: dict[str, Any] = {"SubnetId": subnet_id}
    if settings.service_security_group:
        networking["AdditionalSecurityGroups"] = [settings.service_security_group]
    name = cluster_name(project)
    bucket, script_key = script_location(settings, name)
    return {
        "InstanceType": instance_type,
        "Networking": networking,
        "Ssh": {"KeyName": key_name or key_pair_name(project), "AllowedIps": settings.service_cidr},
        "Dcv": {"Enabled": False},
        "CustomActions": {"OnNodeStart": {"Script": f"s3://{bucket}/{script_key}"}},
        "Iam": {
            "S3Access": [
                {
                    "BucketName": bucket,
                    "KeyName": f"{script_prefix(settings, name)}*",
                    "EnableWriteAccess": False,
                }
            ],
            "AdditionalIamPolicies": [{"Policy": host_key_policy_arn}],
        },
        "Imds": {"Secured": True},
        "LocalStorage": {"RootVolume": {"Encrypted": True}},
    }


def _queue(
    queue: QueueSpec, subnet_id: str, settings: ProvisionerSettings, scratch_prefix: str
) -> dict[str, Any]:
    networking: dict[str, Any] = {"SubnetIds": [subnet_id], "AssignPublicIp": False}
    if queue.placement_group:
        networking["PlacementGroup"] = {"Enabled": True}
    resources = []
    for instance_type in queue.instance_types:
        resource: dict[str, Any] = {
            "Name": re.sub(r"[^a-z0-9]+", "-", instance_type.lower())[:25],
            "InstanceType": instance_type,
            "MinCount": queue.min_count,
            "MaxCount": queue.max_count,
        }
        if queue.efa:
            resource["Efa"] = {"Enabled": True}
        resources.append(resource)
    return {
        "Name": queue.name,
        "CapacityType": queue.capacity_type,
        "Networking": networking,
        "ComputeResources": resources,
        "Iam": {"S3Access": _s3_access(settings, scratch_prefix)},
    }


def _s3_access(settings: ProvisionerSettings, scratch_prefix: str) -> list[dict[str, Any]]:
    return [
        {"BucketName": _bucket(settings.lustre.project_data_bucket), "EnableWriteAccess": False},
        {
            "BucketName": _bucket(settings.lustre.scratch_bucket),
            "KeyName": f"{scratch_prefix}/*",
            "EnableWriteAccess": True,
        },
    ]


def _home(settings: ProvisionerSettings) -> dict[str, Any]:
    efs: dict[str, Any]
    if settings.home_efs_id:
        efs = {"FileSystemId": settings.home_efs_id}
    else:
        efs = {"Encrypted": True, "PerformanceMode": "generalPurpose", "DeletionPolicy": "Delete"}
    return {"Name": "home", "StorageType": "Efs", "MountDir": "/home", "EfsSettings": efs}


def _lustre(settings: ProvisionerSettings, scratch_prefix: str) -> dict[str, Any]:
    lustre = settings.lustre
    return {
        "Name": "lustre",
        "StorageType": "FsxLustre",
        "MountDir": lustre.mount_dir,
        "FsxLustreSettings": {
            "DeploymentType": "PERSISTENT_2",
            "StorageCapacity": lustre.storage_capacity,
            "PerUnitStorageThroughput": lustre.per_unit_storage_throughput,
            "DataCompressionType": "LZ4",
            "DeletionPolicy": "Delete",
            "DataRepositoryAssociations": [
                {
                    "Name": "project-data",
                    "FileSystemPath": "/project",
                    "DataRepositoryPath": lustre.project_data_bucket,
                    "BatchImportMetaDataOnCreate": True,
                    "AutoImportPolicy": list(_ONE_CHANGE),  # import only: never exported
                },
                {
                    "Name": "scratch",
                    "FileSystemPath": "/scratch",
                    "DataRepositoryPath": f"{lustre.scratch_bucket}/{scratch_prefix}/",
                    "BatchImportMetaDataOnCreate": True,
                    "AutoImportPolicy": list(_ONE_CHANGE),
                    "AutoExportPolicy": list(_ONE_CHANGE),
                },
            ],
        },
    }


def _bucket(url: str) -> str:
    return url.removeprefix("s3://").split("/", 1)[0]
