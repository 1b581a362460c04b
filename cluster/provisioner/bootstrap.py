"""The head node's `OnNodeStart` script: it installs the cluster's SSH host key.

We render it (one per cluster: it names the cluster's host key secret and the public key it
must match) and upload it to `bootstrap_s3_url`; the ParallelCluster configuration points
`HeadNode/CustomActions/OnNodeStart/Script` at it. ParallelCluster runs it as root before its
own bootstrap. It fetches the private host key with the AWS CLI (the head node may read that
one secret, see `hostkeys.HostKeyStore.grant`), checks it is the key whose public half the
provisioner recorded, installs it as /etc/ssh/ssh_host_ed25519_key (mode 600) with its .pub,
and restarts sshd. It never prints the key.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from cluster.provisioner import _aws
from cluster.provisioner.settings import ProvisionerSettings

SCRIPT_NAME = "on-node-start.sh"
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"

_TEMPLATE = """#!/bin/bash
# OnNodeStart of the head node of {name}, rendered by workflow-orchestrator: install the
# cluster's SSH host key (kept in Secrets Manager) so the service can verify this host.
set -euo pipefail
umask 077
SECRET_ARN={secret_arn}
REGION={region}
EXPECTED={public_key}
KEY={key_path}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SECRET_ARN" \\
    --query SecretString --output text > "$work/key"
ssh-keygen -y -f "$work/key" > "$work/key.pub"
read -r key_type key_body _ < "$work/key.pub" || true
if [ "$key_type $key_body" != "$EXPECTED" ]; then
    echo "the host key in $SECRET_ARN is not the one the provisioner recorded" >&2
    exit 1
fi
install -o root -g root -m 600 "$work/key" "$KEY"
install -o root -g root -m 644 "$work/key.pub" "$KEY.pub"
if command -v restorecon >/dev/null 2>&1; then restorecon "$KEY" "$KEY.pub"; fi
systemctl restart sshd 2>/dev/null || systemctl restart ssh
"""


@dataclass(frozen=True)
class BootstrapScript:
    text: str
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def script_location(settings: ProvisionerSettings, name: str) -> tuple[str, str]:
    """(bucket, key) of cluster `name`'s start-up script."""
    bucket, _, prefix = settings.bootstrap_s3_url.removeprefix("s3://").partition("/")
    return bucket, f"{prefix}{name}/{SCRIPT_NAME}"


def script_prefix(settings: ProvisionerSettings, name: str) -> str:
    """The key prefix of cluster `name`'s objects (what its head node may read)."""
    return script_location(settings, name)[1].removesuffix(SCRIPT_NAME)


def host_key_script(
    settings: ProvisionerSettings, name: str, secret_arn: str, public_key: str
) -> BootstrapScript:
    """The script text for cluster `name`, and where it goes in S3."""
    expected = " ".join(public_key.split()[:2])  # "ssh-ed25519 AAAA...", no comment
    text = _TEMPLATE.format(
        name=name,
        secret_arn=shlex.quote(secret_arn),
        region=shlex.quote(_region_of(secret_arn) or settings.region),
        public_key=shlex.quote(expected),
        key_path=shlex.quote(HOST_KEY_PATH),
    )
    bucket, key = script_location(settings, name)
    return BootstrapScript(text, bucket, key)


def upload(s3: Any, script: BootstrapScript, tags: dict[str, str]) -> None:
    from urllib.parse import urlencode

    with _aws.translated(f"uploading the start-up script to {script.url}"):
        s3.put_object(
            Bucket=script.bucket,
            Key=script.key,
            Body=script.text.encode(),
            ContentType="text/x-shellscript",
            ServerSideEncryption="AES256",
            Tagging=urlencode(tags),
        )


def remove(s3: Any, settings: ProvisionerSettings, name: str) -> None:
    """Delete the cluster's script; safe to repeat (S3 deletes of missing keys succeed, and
    a missing bucket holds no script: a create that failed on it must still be deletable)."""
    from botocore.exceptions import ClientError

    bucket, key = script_location(settings, name)
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _aws.error_code(exc) != "NoSuchBucket":
            with _aws.translated(f"deleting the start-up script s3://{bucket}/{key}"):
                raise


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else None
