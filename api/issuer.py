"""The embedded development issuer: real RS256 tokens from a key kept on disk.

There is no "auth off" mode; on a laptop this issuer stands in for Keycloak, so the same
verification path runs everywhere. Anyone who can read the key (or run `orchestrator token` as
the service's user) can sign tokens of any project, so it serves only where that is the same
person as the user: `serve` on a loopback address, unless allowed explicitly
(`--allow-dev-issuer`, `ORCHESTRATOR_AUTH__DEV_ISSUER=allowed`); never where
`ORCHESTRATOR_AUTH__DEV_ISSUER=forbidden` (the service image), whatever the command line says.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.auth import TokenVerifier, project_group
from api.errors import DevIssuerRefused
from orchestrator.private_paths import make_private_folder
from orchestrator.settings import AuthSettings

DEV_ISSUER = "orchestrator-dev-issuer"
KEY_FILE = "dev-issuer-key.pem"


class DevIssuer:
    """Signs tokens for local use with an RSA key at `folder/dev-issuer-key.pem`.

    The key survives restarts, so tokens stay valid across them; its kid is the key's
    RFC 7638 thumbprint, so every process using the same folder agrees on it.
    """

    def __init__(self, folder: Path):
        self._private_key = _load_or_create_key(Path(folder) / KEY_FILE)
        public = RSAAlgorithm.to_jwk(self._private_key.public_key(), as_dict=True)
        self.kid = jwk_thumbprint(public)
        self._public_jwk = {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}

    @property
    def jwks(self) -> dict[str, Any]:
        """The public JWKS (a fresh copy: callers may mutate it)."""
        return {"keys": [dict(self._public_jwk)]}

    def token(
        self,
        *,
        project: str,
        role: str = "member",
        subject: str = "dev-user",
        audience: str = "orchestrator",
        ttl_seconds: int = 3600,
        extra_groups: Sequence[str] = (),
    ) -> str:
        """A signed token making `subject` a `role` of `project` ("vlab_id/project_id")."""
        group = project_group(project, role)  # ValueError on a malformed project or role
        now = int(time.time())
        claims = {
            "iss": DEV_ISSUER,
            "aud": audience,
            "sub": subject,
            "preferred_username": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "groups": [group, *extra_groups],
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self.kid})

    def verifier(
        self,
        audience: str = "orchestrator",
        remember_seconds: float = 0.0,
        leeway: float = 30.0,
    ) -> TokenVerifier:
        """A verifier that trusts exactly this issuer's key (no HTTP involved)."""
        return TokenVerifier(
            issuer=DEV_ISSUER,
            audience=audience,
            keys=self.jwks["keys"],
            leeway=leeway,
            remember_seconds=remember_seconds,
        )


EXTERNAL_ISSUER_FIX = (
    "configure an external issuer (ORCHESTRATOR_AUTH__JWKS_URL and ORCHESTRATOR_AUTH__ISSUER, "
    "e.g. Keycloak's realm)"
)


def open_dev_issuer(folder: Path, auth: AuthSettings) -> DevIssuer:
    """The development issuer whose key is in `folder`; DevIssuerRefused where the settings
    forbid it (`dev_issuer = "forbidden"`), before any key is read or made."""
    _refuse_if_forbidden(auth)
    return DevIssuer(folder)


def check_dev_issuer(auth: AuthSettings, host: str, *, allow: bool = False) -> None:
    """Refuse (DevIssuerRefused, naming the fix) to serve on `host` with the embedded
    development issuer where it may not serve; nothing to check with an external issuer.

    `allow` is `serve --allow-dev-issuer`: it lifts the loopback rule, not a `forbidden`.
    """
    if auth.jwks_url:
        return
    _refuse_if_forbidden(auth)
    if allow or auth.dev_issuer == "allowed" or is_loopback(host):
        return
    raise DevIssuerRefused(
        f"serve listens on {host!r}, not a loopback address, without an external issuer, and "
        "the embedded development issuer serves on loopback only: "
        f"{EXTERNAL_ISSUER_FIX}, or pass --allow-dev-issuer "
        "(or set ORCHESTRATOR_AUTH__DEV_ISSUER=allowed) to serve it anyway"
    )


def _refuse_if_forbidden(auth: AuthSettings) -> None:
    if auth.dev_issuer == "forbidden":
        raise DevIssuerRefused(
            "the embedded development issuer is forbidden here "
            f"(ORCHESTRATOR_AUTH__DEV_ISSUER=forbidden): {EXTERNAL_ISSUER_FIX}"
        )


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, or a name: every address it resolves to) is a loopback
    one; "", "0.0.0.0" and "::" listen on every interface, so they are not."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(entry[4][0]) for entry in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an RSA public JWK: the required members, sorted,
    without whitespace."""
    required = {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """The key at `path`, created first if missing.

    Creation is safe against a concurrent process: the key is written whole to a private
    temporary file, then hard-linked into place, which fails if the other process won;
    either way the file is re-read, so both end up with the same key.
    """
    make_private_folder(path.parent)  # an existing folder is left as its owner set it
    if not path.exists():
        _publish_new_key(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ValueError(f"{path} does not hold an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def _publish_new_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".dev-issuer-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:  # mkstemp creates the file with mode 0600
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process published its key first; the caller reads that one
    finally:
        os.unlink(temporary)
