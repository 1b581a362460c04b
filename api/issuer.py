"""The embedded development issuer: real RS256 tokens from a key kept on disk.

There is no "auth off" mode; on a laptop this issuer stands in for Keycloak, so the same
verification path runs everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
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
from orchestrator.private_paths import make_private_folder

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
