"""One ED25519 key pair per cluster: the public half imported as an EC2 key pair (the head
node's `Ssh/KeyName`), the private half kept in Secrets Manager, tagged with the project.
Only the secret's ARN ever leaves this module; the key itself lives in local variables only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.provisioner import _aws


@dataclass(frozen=True)
class KeyRef:
    key_name: str
    secret_arn: str


class KeyStore:
    def __init__(self, ec2: Any, secrets: Any, secret_prefix: str):
        self._ec2 = ec2
        self._secrets = secrets
        self._prefix = secret_prefix

    def secret_name(self, key_name: str) -> str:
        return f"{self._prefix}{key_name}"

    def ensure(self, key_name: str, tags: dict[str, str]) -> KeyRef:
        """The key pair named `key_name`, created when missing; half-made leftovers (a key
        pair without its secret, or the reverse) are replaced, never reused."""
        arn = self._secret_arn(key_name)
        has_pair = self._has_key_pair(key_name)
        if arn is not None and has_pair:
            return KeyRef(key_name, arn)
        self.delete(key_name)
        private_text, public_line = new_ed25519()
        aws_tags = [{"Key": k, "Value": v} for k, v in tags.items()]
        with _aws.translated(f"storing the SSH key of {key_name} in Secrets Manager"):
            arn = self._secrets.create_secret(
                Name=self.secret_name(key_name),
                Description=f"SSH private key of the head node of cluster key pair {key_name}",
                SecretString=private_text,
                Tags=aws_tags,
            )["ARN"]
        del private_text
        try:
            with _aws.translated(f"importing the EC2 key pair {key_name}"):
                self._ec2.import_key_pair(
                    KeyName=key_name,
                    PublicKeyMaterial=public_line.encode(),
                    TagSpecifications=[{"ResourceType": "key-pair", "Tags": aws_tags}],
                )
        except Exception:
            self._delete_secret(key_name)  # no orphan secret
            raise
        return KeyRef(key_name, str(arn))

    def delete(self, key_name: str) -> None:
        """Remove the key pair and its secret; safe to repeat."""
        with _aws.translated(f"deleting the EC2 key pair {key_name}"):
            self._ec2.delete_key_pair(KeyName=key_name)  # no error when it does not exist
        self._delete_secret(key_name)

    def _delete_secret(self, key_name: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._secrets.delete_secret(
                SecretId=self.secret_name(key_name), ForceDeleteWithoutRecovery=True
            )
        except ClientError as exc:
            if _aws.error_code(exc) != "ResourceNotFoundException":
                with _aws.translated(f"deleting the SSH key secret of {key_name}"):
                    raise

    def _secret_arn(self, key_name: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            found = self._secrets.describe_secret(SecretId=self.secret_name(key_name))
        except ClientError as exc:
            if _aws.error_code(exc) == "ResourceNotFoundException":
                return None
            with _aws.translated(f"looking up the SSH key secret of {key_name}"):
                raise
        return None if found.get("DeletedDate") else str(found["ARN"])

    def _has_key_pair(self, key_name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            found = self._ec2.describe_key_pairs(KeyNames=[key_name])["KeyPairs"]
        except ClientError as exc:
            if _aws.error_code(exc) == "InvalidKeyPair.NotFound":
                return False
            with _aws.translated(f"looking up the EC2 key pair {key_name}"):
                raise
        return bool(found)


def new_ed25519() -> tuple[str, str]:
    """(private key in OpenSSH format, public key line "ssh-ed25519 AAAA...")."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public
