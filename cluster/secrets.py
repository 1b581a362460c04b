"""The head node's SSH private key: from a file, or from AWS Secrets Manager by ARN.

The provisioner keeps each cluster's key in Secrets Manager; only its ARN leaves it. boto3
finds credentials, region and endpoint (`AWS_ENDPOINT_URL`) the usual way.
"""

from __future__ import annotations

from typing import Any

import asyncssh

from cluster.settings import SSHSettings


def load_private_key(settings: SSHSettings) -> asyncssh.SSHKey:
    passphrase = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    if settings.key_file is not None:
        return asyncssh.read_private_key(settings.key_file.expanduser(), passphrase)
    if settings.key_secret_arn:
        return asyncssh.import_private_key(fetch_secret(settings.key_secret_arn), passphrase)
    raise ValueError("no SSH key configured (cluster.ssh.key_file or cluster.ssh.key_secret_arn)")


def fetch_secret(arn: str) -> str:
    """The secret's string value. Errors name the ARN, never the value."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    region = _region_of(arn)
    try:
        client: Any = boto3.client("secretsmanager", **({"region_name": region} if region else {}))
        value = client.get_secret_value(SecretId=arn)
    except (BotoCoreError, ClientError) as exc:
        raise ValueError(f"cannot read the SSH key from Secrets Manager ({arn}): {exc}") from exc
    secret = value.get("SecretString")
    if not secret:
        raise ValueError(f"the secret {arn} holds no SecretString (an SSH private key expected)")
    return str(secret)


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else None
