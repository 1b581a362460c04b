"""The certificates of one compute: a CA made when the compute starts, and one certificate per
role (the service's client, the scheduler, the workers), each naming its role.

The CA's key is used once, here, and dropped. The scheduler tells its peers apart by the role
in their certificate (see `cluster.scheduler.guard`): only the holder of the client key, which
never leaves the service process, may run code on the scheduler.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from distributed.security import Security

VALIDITY = datetime.timedelta(days=30)
ORGANIZATION = "orchestrator"


class Role(StrEnum):
    CLIENT = "client"
    SCHEDULER = "scheduler"
    WORKER = "worker"


@dataclass(frozen=True)
class KeyPair:
    cert: str  # PEM
    key: str  # PEM (PKCS#8, unencrypted: it lives in memory or in a private file)


@dataclass(frozen=True)
class ComputeCertificates:
    ca: str  # the CA certificate (PEM): every role trusts only it
    roles: dict[Role, KeyPair]

    @classmethod
    def create(cls, name: str = "compute") -> ComputeCertificates:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name(f"{name} CA")
        now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        roles = {}
        for role in Role:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (
                x509.CertificateBuilder()
                .subject_name(_name(role.value))
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now)
                .not_valid_after(now + VALIDITY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage(
                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                    ),
                    critical=False,
                )
                .add_extension(
                    x509.SubjectAlternativeName([x509.DNSName(f"{role.value}.{name}")]),
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
            roles[role] = KeyPair(cert=_pem(cert), key=_key_pem(key))
        return cls(ca=_pem(ca_cert), roles=roles)

    def security(self, role: Role) -> Security:
        """The `Security` of one role: its own key pair for every connection it makes or
        accepts (a worker also listens, for its peers and the scheduler), TLS required."""
        pair = self.roles[role]
        fields = {"tls_ca_file": self.ca}
        for use in ("client", "scheduler", "worker"):
            fields[f"tls_{use}_cert"] = pair.cert
            fields[f"tls_{use}_key"] = pair.key
        if role is Role.CLIENT:
            # the service's client only connects: it never listens as scheduler or worker
            fields = {
                "tls_ca_file": self.ca,
                "tls_client_cert": pair.cert,
                "tls_client_key": pair.key,
            }
        return Security(require_encryption=True, **fields)

    def fields(self, role: Role) -> dict[str, str]:
        """The same, as plain fields (sent to a child process on its stdin)."""
        security = self.security(role)
        return {
            name: value
            for name in (
                "tls_ca_file",
                "tls_client_cert",
                "tls_client_key",
                "tls_scheduler_cert",
                "tls_scheduler_key",
                "tls_worker_cert",
                "tls_worker_key",
            )
            if (value := getattr(security, name, None))
        }


def role_of(peercert: dict[str, Any] | None) -> Role | None:
    """The role named by a peer's certificate (as `ssl.getpeercert()` gives it; the TLS layer
    has already checked that the compute's CA signed it), or None."""
    if not peercert:
        return None
    names = {key: value for rdn in peercert.get("subject", ()) for key, value in rdn if key}
    if names.get("organizationName") != ORGANIZATION:
        return None
    try:
        return Role(names.get("commonName", ""))
    except ValueError:
        return None


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
