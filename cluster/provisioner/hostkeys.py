"""The head node's SSH *host* key, made by us so the service can verify the head node.

ParallelCluster's head node makes its own host keys at first boot, and nothing reports them.
So at create the provisioner makes an ED25519 host key pair: the private half goes to
Secrets Manager next to the user key (same prefix, same tags); the public half is kept in the
cluster record, for its known_hosts line. The head node's start-up script
(`bootstrap.host_key_script`) installs the key from the secret, which the head node may read
through one IAM policy per cluster naming exactly that secret (`grant`).

Only the secret's ARN and the public key ever leave this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cluster.provisioner import _aws
from cluster.provisioner.errors import AwsError
from cluster.provisioner.keys import new_ed25519

HOST_KEY_SUFFIX = "-host-ed25519"


@dataclass(frozen=True)
class HostKeyRef:
    secret_arn: str
    public_key: str  # "ssh-ed25519 AAAA..."


class HostKeyStore:
    def __init__(self, secrets: Any, iam: Any, secret_prefix: str, policy_path: str):
        self._secrets = secrets
        self._iam = iam
        self._prefix = secret_prefix
        self._path = policy_path

    def secret_name(self, name: str) -> str:
        return f"{self._prefix}{name}{HOST_KEY_SUFFIX}"

    def policy_name(self, name: str) -> str:
        return f"{name}{HOST_KEY_SUFFIX}-read"

    def ensure(self, name: str, tags: dict[str, str]) -> HostKeyRef:
        """The host key of cluster `name`: the stored one (a head node may already run with
        it), else a new one."""
        found = self._existing(name)
        if found is not None:
            return found
        private_text, public_line = new_ed25519()
        with _aws.translated(f"storing the SSH host key of {name} in Secrets Manager"):
            arn = self._secrets.create_secret(
                Name=self.secret_name(name),
                Description=f"SSH host key (private) of the head node of cluster {name}",
                SecretString=private_text,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )["ARN"]
        del private_text
        return HostKeyRef(str(arn), public_line)

    def grant(self, name: str, secret_arn: str, tags: dict[str, str]) -> str:
        """The ARN of a managed policy allowing `secretsmanager:GetSecretValue` on this one
        secret (for the head node's `Iam/AdditionalIamPolicies`); created when missing."""
        from botocore.exceptions import ClientError

        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadOwnSshHostKey",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": secret_arn,
                }
            ],
        }
        try:
            created = self._iam.create_policy(
                PolicyName=self.policy_name(name),
                Path=self._path,
                PolicyDocument=json.dumps(document),
                Description=f"the head node of {name} may read its SSH host key",
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
            return str(created["Policy"]["Arn"])
        except ClientError as exc:
            if _aws.error_code(exc) != "EntityAlreadyExists":
                with _aws.translated(f"creating the host key policy of {name}"):
                    raise
        arn = self._policy_arn(name)
        if arn is None:  # pragma: no cover - deleted between the two calls
            raise AwsError(f"the host key policy of {name} vanished while creating it")
        with _aws.translated(f"updating the host key policy of {name}"):
            self._iam.create_policy_version(
                PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True
            )
            self._drop_old_versions(arn)
        return arn

    def delete(self, name: str) -> None:
        """Remove the policy (unattached by now: its cluster is gone) and the secret; safe
        to repeat."""
        from botocore.exceptions import ClientError

        arn = self._policy_arn(name)
        if arn is not None:
            with _aws.translated(f"deleting the host key policy of {name}"):
                self._drop_old_versions(arn)
            try:
                self._iam.delete_policy(PolicyArn=arn)
            except ClientError as exc:
                if _aws.error_code(exc) != "NoSuchEntity":
                    with _aws.translated(f"deleting the host key policy of {name}"):
                        raise
        try:
            self._secrets.delete_secret(
                SecretId=self.secret_name(name), ForceDeleteWithoutRecovery=True
            )
        except ClientError as exc:
            if _aws.error_code(exc) != "ResourceNotFoundException":
                with _aws.translated(f"deleting the SSH host key secret of {name}"):
                    raise

    def _existing(self, name: str) -> HostKeyRef | None:
        from botocore.exceptions import ClientError
        from cryptography.hazmat.primitives import serialization

        try:
            found = self._secrets.get_secret_value(SecretId=self.secret_name(name))
        except ClientError as exc:
            if _aws.error_code(exc) in ("ResourceNotFoundException", "InvalidRequestException"):
                return None  # none, or scheduled for deletion
            with _aws.translated(f"reading the SSH host key secret of {name}"):
                raise
        key = serialization.load_ssh_private_key(found["SecretString"].encode(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        return HostKeyRef(str(found["ARN"]), public.decode())

    def _policy_arn(self, name: str) -> str | None:
        wanted = self.policy_name(name)
        with _aws.translated(f"looking up the host key policy of {name}"):
            for page in self._iam.get_paginator("list_policies").paginate(
                Scope="Local", PathPrefix=self._path
            ):
                for policy in page["Policies"]:
                    if policy["PolicyName"] == wanted:
                        return str(policy["Arn"])
        return None

    def _drop_old_versions(self, arn: str) -> None:
        """Only the default version stays (a policy holds five at most; deleting one needs
        its other versions gone)."""
        for version in self._iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not version["IsDefaultVersion"]:
                self._iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
