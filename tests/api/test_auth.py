"""Token verification with real keys: tokens signed by PyJWT (or by hand, for the attacks
PyJWT refuses to produce), checked against a JWKS served over real HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from api.auth import Principal, TokenVerifier, parse_groups
from api.errors import AuthError
from api.issuer import KEY_FILE, DevIssuer, jwk_thumbprint
from tests.api.jwks_server import JwksServer

REPO = Path(__file__).resolve().parents[2]
ISSUER = "https://keycloak.test/realms/platform"
AUDIENCE = "orchestrator"
REFRESH = 0.3  # the verifiers' min_refresh_interval in these tests, in seconds
DROP = object()  # a claim value meaning "leave this claim out"


@dataclass(frozen=True)
class SigningKey:
    """A private key as an issuer holds it, with the kid and alg its JWK announces."""

    kid: str
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def jwk(self, **fields: Any) -> dict[str, Any]:
        """The public JWK; `fields` override or, with None, remove members."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        jwk = {**public, "kid": self.kid, "alg": self.alg, "use": "sig", **fields}
        return {name: value for name, value in jwk.items() if value is not None}

    def sign(self, claims: dict[str, Any], *, alg: str | None = None, kid: bool = True) -> str:
        headers = {"kid": self.kid} if kid else {}
        return jwt.encode(claims, self.private, algorithm=alg or self.alg, headers=headers)


def rsa_key(kid: str, bits: int = 2048) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("key-1")


@pytest.fixture(scope="module")
def new_key() -> SigningKey:
    return rsa_key("key-2")


@pytest.fixture(scope="module")
def foreign(key: SigningKey) -> SigningKey:
    """Someone else's key, claiming the trusted key's kid."""
    return rsa_key(key.kid)


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def jwks(key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([key.jwk()]) as server:
        yield server


@pytest.fixture
def verifier(jwks: JwksServer) -> TokenVerifier:
    return remote_verifier(jwks)


def remote_verifier(jwks: JwksServer, **options: Any) -> TokenVerifier:
    options.setdefault("min_refresh_interval", REFRESH)
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks.url, **options)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "f3a1c2d4",
        "preferred_username": "ada",
        "iat": now,
        "exp": now + 300,
        "groups": ["/proj/vlab1/proj-a/member"],
        **overrides,
    }
    return {name: value for name, value in base.items() if value is not DROP}


def rejection(verifier: TokenVerifier, token: str) -> str:
    """The reason `verifier` gives for rejecting `token`, after checking it never leaks it."""
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    if len(token) > 20:  # shorter strings could appear in a traceback by coincidence
        assert token not in "".join(traceback.format_exception(caught.value))
    return caught.value.reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: object, payload: object, sign: Callable[[bytes], bytes] | None) -> str:
    """A compact JWS assembled by hand, as an attacker would (PyJWT even refuses to use a PEM
    key as an HMAC secret)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def wait_past_refresh_interval() -> None:
    time.sleep(REFRESH + 0.05)


# --- valid tokens ------------------------------------------------------------------------


def test_valid_token_gives_the_principal_and_its_permissions(
    verifier: TokenVerifier, key: SigningKey
) -> None:
    groups = ["/proj/vlab1/proj-a/admin", "/proj/vlab1/proj-b/member", "/platform/users"]
    principal = verifier.verify(key.sign(claims(groups=groups)))

    assert principal == Principal(
        subject="f3a1c2d4",
        username="ada",
        memberships={"vlab1/proj-a": frozenset({"admin"}), "vlab1/proj-b": frozenset({"member"})},
    )
    assert principal.can("vlab1/proj-a", "delete")
    assert principal.can("vlab1/proj-b", "submit")
    assert not principal.can("vlab1/proj-b", "delete")
    assert not principal.can("vlab1/proj-c", "read")


def test_keys_are_fetched_once_and_cached(
    verifier: TokenVerifier, jwks: JwksServer, key: SigningKey
) -> None:
    assert jwks.requests == 0  # nothing is fetched before the first token
    for subject in ("a", "b", "c"):
        assert verifier.verify(key.sign(claims(sub=subject))).subject == subject
    assert jwks.requests == 1


def test_an_ec_key_verifies_es256(ec_key: SigningKey) -> None:
    with JwksServer([ec_key.jwk()]) as server:
        assert remote_verifier(server).verify(ec_key.sign(claims())).username == "ada"


def test_audience_may_be_one_of_several(verifier: TokenVerifier, key: SigningKey) -> None:
    token = key.sign(claims(aud=["account", AUDIENCE]))
    assert verifier.verify(token).subject == "f3a1c2d4"


# --- time claims -------------------------------------------------------------------------


def test_expired(verifier: TokenVerifier, key: SigningKey) -> None:
    now = int(time.time())
    assert rejection(verifier, key.sign(claims(iat=now - 600, exp=now - 60))) == "token expired"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid_beyond_the_leeway(
    verifier: TokenVerifier, key: SigningKey, claim: str
) -> None:
    """PyJWT treats an `iat` in the future like an `nbf`: both mean "not yet"."""
    token = key.sign(claims(**{claim: int(time.time()) + 60}))
    assert rejection(verifier, token) == "token not yet valid"


def test_within_the_leeway_is_accepted(verifier: TokenVerifier, key: SigningKey) -> None:
    """Clocks of the issuer and the service drift; 30 s either way is tolerated."""
    now = int(time.time())
    token = key.sign(claims(iat=now + 10, nbf=now + 10, exp=now - 10))
    assert verifier.verify(token).subject == "f3a1c2d4"


# --- who the token is for, and from ------------------------------------------------------


def test_wrong_audience(verifier: TokenVerifier, key: SigningKey) -> None:
    token = key.sign(claims(aud=["account", "other-service"]))
    assert rejection(verifier, token) == "wrong audience"


@pytest.mark.parametrize(
    "issuer",
    ["https://evil.test/realms/platform", ISSUER[:-1], ISSUER + "/", ISSUER.upper()],
    ids=["other", "prefix", "extended", "case"],
)
def test_wrong_issuer(verifier: TokenVerifier, key: SigningKey, issuer: str) -> None:
    """Exact comparison: PyJWT 2.10.0 once accepted a substring of the issuer."""
    assert rejection(verifier, key.sign(claims(iss=issuer))) == "wrong issuer"


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud"])
def test_missing_required_claim(verifier: TokenVerifier, key: SigningKey, claim: str) -> None:
    token = key.sign(claims(**{claim: DROP}))
    assert rejection(verifier, token) == f"missing claim {claim}"


@pytest.mark.parametrize(
    ("present", "subject"),
    [
        ({"preferred_username": "ada", "azp": "web", "client_id": "svc"}, "ada"),
        ({"preferred_username": DROP, "azp": "web", "client_id": "svc"}, "web"),
        ({"preferred_username": DROP, "client_id": "svc"}, "svc"),
        ({"preferred_username": "", "azp": 7, "client_id": "svc"}, "svc"),
    ],
    ids=["preferred_username", "azp", "client_id", "skips-empty-and-non-strings"],
)
def test_token_without_sub_names_the_caller_by_another_claim(
    verifier: TokenVerifier, key: SigningKey, present: dict[str, Any], subject: str
) -> None:
    """Keycloak leaves `sub` out of some tokens (service accounts, lightweight tokens)."""
    groups = ["/proj/vlab1/proj-a/member"]
    principal = verifier.verify(key.sign(claims(sub=DROP, groups=groups, **present)))
    assert principal.subject == subject
    assert principal.can("vlab1/proj-a", "read")


def test_token_naming_no_caller_is_rejected(verifier: TokenVerifier, key: SigningKey) -> None:
    token = key.sign(claims(sub=DROP, preferred_username=DROP))  # no azp, no client_id either
    assert rejection(verifier, token) == "missing claim sub"


@pytest.mark.parametrize("subject", ["", 42])
def test_subject_must_be_a_non_empty_string(
    verifier: TokenVerifier, key: SigningKey, subject: object
) -> None:
    assert rejection(verifier, key.sign(claims(sub=subject))) == "invalid subject"


# --- signatures and keys -----------------------------------------------------------------


def test_foreign_key_with_the_trusted_kid(
    verifier: TokenVerifier, jwks: JwksServer, foreign: SigningKey
) -> None:
    assert rejection(verifier, foreign.sign(claims())) == "bad signature"
    assert jwks.requests == 1  # a known kid: no refetch


def test_tampered_payload(verifier: TokenVerifier, key: SigningKey) -> None:
    header, _, signature = key.sign(claims()).split(".")
    admin = b64(json.dumps(claims(groups=["/proj/vlab1/proj-a/admin"])).encode())
    assert rejection(verifier, f"{header}.{admin}.{signature}") == "bad signature"


def test_unknown_kid_refetches_at_most_once_per_interval(
    verifier: TokenVerifier, jwks: JwksServer, key: SigningKey, foreign: SigningKey
) -> None:
    def bogus(kid: str) -> str:
        return SigningKey(kid, "RS256", foreign.private).sign(claims())

    verifier.verify(key.sign(claims()))
    assert rejection(verifier, bogus("ghost-0")) == "unknown signing key"
    assert jwks.requests == 1  # the keys were fetched a moment ago: not again

    wait_past_refresh_interval()
    assert rejection(verifier, bogus("ghost-1")) == "unknown signing key"
    assert jwks.requests == 2  # the unknown kid triggered one refetch
    assert rejection(verifier, bogus("ghost-2")) == "unknown signing key"
    assert jwks.requests == 2  # rate-limited: a flood of bogus kids costs one fetch

    wait_past_refresh_interval()
    assert rejection(verifier, bogus("ghost-3")) == "unknown signing key"
    assert jwks.requests == 3


def test_key_rotation_is_picked_up_by_the_refetch(
    verifier: TokenVerifier, jwks: JwksServer, key: SigningKey, new_key: SigningKey
) -> None:
    verifier.verify(key.sign(claims()))
    jwks.keys = [key.jwk(), new_key.jwk()]  # the issuer publishes its next key
    wait_past_refresh_interval()

    assert verifier.verify(new_key.sign(claims(sub="rotated"))).subject == "rotated"
    assert verifier.verify(key.sign(claims())).subject == "f3a1c2d4"  # the old key still works
    assert jwks.requests == 2


def test_stale_keys_are_refreshed_and_kept_if_the_issuer_is_down(
    jwks: JwksServer, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = remote_verifier(jwks, cache_ttl=REFRESH, min_refresh_interval=0.0)
    verifier.verify(key.sign(claims()))
    wait_past_refresh_interval()
    verifier.verify(key.sign(claims()))
    assert jwks.requests == 2  # the cache expired: refetched, so removed keys stop working

    jwks.fail_with = 503
    wait_past_refresh_interval()
    with caplog.at_level(logging.WARNING, logger="api.auth"):
        assert verifier.verify(key.sign(claims())).subject == "f3a1c2d4"
    assert jwks.requests == 3
    assert "cannot fetch the JWKS" in caplog.text


def test_stale_keys_serve_while_another_thread_refreshes(jwks: JwksServer, key: SigningKey) -> None:
    """A slow issuer delays only the one request that refreshes, not every other one."""
    verifier = remote_verifier(jwks, cache_ttl=REFRESH, min_refresh_interval=0.0)
    token = key.sign(claims())
    verifier.verify(token)
    wait_past_refresh_interval()
    jwks.delay = 0.6
    refresher = threading.Thread(target=verifier.verify, args=(token,))
    refresher.start()
    deadline = time.monotonic() + 5
    while jwks.requests < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the refresher's fetch is under way

    started = time.monotonic()
    assert verifier.verify(token).subject == "f3a1c2d4"
    assert time.monotonic() - started < 0.3
    refresher.join()
    assert jwks.requests == 2


def test_concurrent_first_use_fetches_once(jwks: JwksServer, key: SigningKey) -> None:
    """No rate limit here: only the lock keeps 16 threads from fetching 16 times."""
    verifier = remote_verifier(jwks, min_refresh_interval=0.0)
    jwks.delay = 0.2
    token = key.sign(claims())
    start = threading.Barrier(16)
    subjects: list[str] = []

    def verify() -> None:
        start.wait()
        subjects.append(verifier.verify(token).subject)

    threads = [threading.Thread(target=verify) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert subjects == ["f3a1c2d4"] * 16
    assert jwks.requests == 1


def test_token_without_kid_needs_a_single_signing_key(key: SigningKey, new_key: SigningKey) -> None:
    encryption = rsa_key("enc-1").jwk(use="enc", alg="RSA-OAEP")  # Keycloak publishes one
    token = key.sign(claims(), kid=False)
    with JwksServer([encryption, key.jwk()]) as server:
        assert remote_verifier(server).verify(token).subject == "f3a1c2d4"
    with JwksServer([key.jwk(), new_key.jwk()]) as server:
        assert rejection(remote_verifier(server), token) == "token has no key id"


def test_key_without_alg_accepts_every_allowed_algorithm_of_its_family(
    key: SigningKey, ec_key: SigningKey
) -> None:
    """PyJWK binds an RSA JWK without `alg` to RS256 only; the verifier does not."""
    with JwksServer([key.jwk(alg=None)]) as server:
        verifier = remote_verifier(server)
        for alg in ("RS256", "RS384", "PS256"):
            assert verifier.verify(key.sign(claims(), alg=alg)).subject == "f3a1c2d4"
        impostor = SigningKey(key.kid, "ES256", ec_key.private).sign(claims())
        assert rejection(verifier, impostor) == "algorithm not allowed for this key"


def test_key_with_alg_accepts_only_that_algorithm(verifier: TokenVerifier, key: SigningKey) -> None:
    token = key.sign(claims(), alg="RS384")
    assert rejection(verifier, token) == "algorithm not allowed for this key"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_weak_rsa_key_is_refused() -> None:
    weak = rsa_key("weak", bits=1024)
    with JwksServer([weak.jwk()]) as server:
        assert rejection(remote_verifier(server), weak.sign(claims())) == "unusable signing key"


# --- algorithm attacks (rejected before any key lookup: no fetch) ------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_rejected(
    verifier: TokenVerifier, jwks: JwksServer, key: SigningKey, alg: str
) -> None:
    token = hand_made({"alg": alg, "typ": "JWT", "kid": key.kid}, claims(), sign=None)
    assert rejection(verifier, token) == "unsupported algorithm"
    assert jwks.requests == 0


def test_hs256_signed_with_the_public_key_is_rejected(
    verifier: TokenVerifier, jwks: JwksServer, key: SigningKey
) -> None:
    """The classic confusion: the public key, known to all, used as an HMAC secret."""
    public_pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": key.kid},
        claims(),
        sign=lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
    )
    assert rejection(verifier, token) == "unsupported algorithm"
    assert jwks.requests == 0


@pytest.mark.parametrize("algorithms", [["RS256", "HS256"], ["none"], []])
def test_verifier_refuses_symmetric_or_no_algorithms(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=[], algorithms=algorithms)


@pytest.mark.parametrize(
    "sources",
    [{}, {"jwks_url": "http://127.0.0.1:9/jwks.json", "keys": []}, {"jwks_url": "file:///x"}],
    ids=["neither", "both", "not-http"],
)
def test_verifier_needs_one_http_or_static_key_source(sources: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, **sources)


# --- malformed input (rejected before any key lookup: no fetch) --------------------------


def encoded_header(fields: object) -> str:
    return b64(json.dumps(fields).encode())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "é.é.é",
        "!!!!.e30.",
        f"{b64(b'not json')}.e30.",
        f"{encoded_header([1, 2])}.e30.",
        f"{encoded_header({'alg': 'RS256', 'kid': 42})}.e30.",
        f"{encoded_header({'alg': 'RS256', 'crit': ['exp']})}.e30.",
    ],
    ids=[
        "empty",
        "one-segment",
        "two-segments",
        "bad-base64",
        "empty-segments",
        "non-ascii",
        "junk-header",
        "header-not-json",
        "header-not-object",
        "kid-not-string",
        "unknown-critical-extension",
    ],
)
def test_malformed_tokens(verifier: TokenVerifier, jwks: JwksServer, token: str) -> None:
    assert rejection(verifier, token) == "malformed token"
    assert jwks.requests == 0


@pytest.mark.parametrize(
    "fields", [{"kid": "key-1"}, {"alg": ["RS256"]}, {"alg": ""}], ids=["none", "list", "empty"]
)
def test_header_without_a_usable_alg(
    verifier: TokenVerifier, jwks: JwksServer, fields: dict[str, Any]
) -> None:
    assert rejection(verifier, f"{encoded_header(fields)}.e30.") == "unsupported algorithm"
    assert jwks.requests == 0


def test_malformed_payload_under_a_valid_header(verifier: TokenVerifier, key: SigningKey) -> None:
    header, _, signature = key.sign(claims()).split(".")
    assert rejection(verifier, f"{header}.!!!!.{signature}") == "malformed token"


# --- the issuer's JWKS endpoint failing --------------------------------------------------


def test_issuer_down(key: SigningKey, caplog: pytest.LogCaptureFixture) -> None:
    server = JwksServer([key.jwk()]).start()
    verifier = remote_verifier(server)
    server.stop()  # the port is closed now: connections are refused
    token = key.sign(claims())

    with caplog.at_level(logging.DEBUG):
        assert rejection(verifier, token) == "cannot fetch the issuer's keys"
    assert "cannot fetch the JWKS from http://127.0.0.1:" in caplog.text
    assert token not in caplog.text


@pytest.mark.parametrize(
    "body", [b"<html>Bad gateway</html>", b'"keys"', b'{"keys": "nope"}', b'{"keys": []}']
)
def test_issuer_answers_garbage(jwks: JwksServer, key: SigningKey, body: bytes) -> None:
    jwks.body = body
    assert rejection(remote_verifier(jwks), key.sign(claims())) == "cannot fetch the issuer's keys"


def test_issuer_answers_an_error(
    verifier: TokenVerifier, jwks: JwksServer, key: SigningKey
) -> None:
    jwks.fail_with = 500
    assert rejection(verifier, key.sign(claims())) == "cannot fetch the issuer's keys"


def test_fetch_failures_are_rate_limited_too(
    verifier: TokenVerifier, jwks: JwksServer, key: SigningKey
) -> None:
    jwks.fail_with = 503
    token = key.sign(claims())
    for _ in range(3):
        assert rejection(verifier, token) == "cannot fetch the issuer's keys"
    assert jwks.requests == 1

    jwks.fail_with = None  # the issuer is back
    wait_past_refresh_interval()
    assert verifier.verify(token).subject == "f3a1c2d4"
    assert jwks.requests == 2


# --- groups and permissions --------------------------------------------------------------


def test_groups_of_several_projects_and_roles() -> None:
    groups = ["/proj/vlab1/proj-a/member", "/proj/vlab1/proj-a/admin", "/proj/V_2/p-2/member"]
    assert parse_groups(groups) == {
        "vlab1/proj-a": frozenset({"member", "admin"}),
        "V_2/p-2": frozenset({"member"}),
    }


@pytest.mark.parametrize(
    "entry",
    [
        "proj/vlab1/proj-a/member",
        "/proj/vlab1/member",
        "/proj/vlab1/proj-a/member/extra",
        "/proj/vlab1/proj-a/",
        "/proj/vlab 1/proj-a/member",
        "/proj/vlab1/proj.a/member",
        "/proj/vlabé/proj-a/member",
        "/proj/vlab1/proj-a/member\n",
        "/projects/vlab1/proj-a/member",
        f"/proj/{'v' * 101}/proj-a/member",
        42,
        None,
        {"path": "/proj/vlab1/proj-a/member"},
    ],
)
def test_malformed_group_entries_are_ignored(entry: object) -> None:
    assert parse_groups([entry, "/proj/vlab1/proj-b/member"]) == {
        "vlab1/proj-b": frozenset({"member"})
    }


def test_ids_of_100_characters_are_accepted() -> None:
    long = "v" * 100
    assert parse_groups([f"/proj/{long}/{long}/admin"]) == {f"{long}/{long}": frozenset({"admin"})}


@pytest.mark.parametrize("groups", [None, "/proj/vlab1/proj-a/member", {"a": "b"}, 7])
def test_groups_claim_that_is_not_a_list_gives_no_membership(groups: object) -> None:
    assert parse_groups(groups) == {}


def test_unknown_role_is_kept_but_grants_nothing() -> None:
    principal = Principal("u", None, parse_groups(["/proj/vlab1/proj-a/viewer"]))
    assert principal.roles("vlab1/proj-a") == {"viewer"}
    assert not any(principal.can("vlab1/proj-a", p) for p in ("read", "submit", "delete"))


def test_admin_can_delete_and_member_cannot() -> None:
    groups = ["/proj/vlab1/proj-a/admin", "/proj/vlab1/proj-b/member"]
    principal = Principal("u", None, parse_groups(groups))
    assert {p for p in ("read", "submit", "delete") if principal.can("vlab1/proj-a", p)} == {
        "read",
        "submit",
        "delete",
    }
    assert {p for p in ("read", "submit", "delete") if principal.can("vlab1/proj-b", p)} == {
        "read",
        "submit",
    }


def test_unknown_permission_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        Principal("u", None, {}).can("vlab1/proj-a", "write")


# --- the embedded development issuer -----------------------------------------------------


@pytest.fixture(scope="module")
def dev_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    """One issuer for the tests that do not look at how its key is created (RSA keygen is slow)."""
    return DevIssuer(tmp_path_factory.mktemp("dev-issuer"))


def test_dev_issuer_creates_a_private_key_file(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "issuer"
    DevIssuer(folder)
    assert stat.S_IMODE((folder / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert os.listdir(folder) == [KEY_FILE]  # no temporary file left behind


def test_dev_issuer_reuses_its_key(tmp_path: Path) -> None:
    first = DevIssuer(tmp_path)
    pem = (tmp_path / KEY_FILE).read_bytes()
    second = DevIssuer(tmp_path)
    assert second.jwks == first.jwks
    assert (tmp_path / KEY_FILE).read_bytes() == pem
    assert second.verifier().verify(first.token(project="vlab1/proj-a")).subject == "dev-user"


def test_dev_issuer_kid_is_the_rfc7638_thumbprint(dev_issuer: DevIssuer) -> None:
    rfc_example = {  # RFC 7638, section 3.1
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhA"
        "I4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(rfc_example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    (public,) = dev_issuer.jwks["keys"]
    assert public["kid"] == jwk_thumbprint(public)
    assert (public["alg"], public["use"]) == ("RS256", "sig")
    assert "d" not in public  # public parts only


def test_dev_issuer_token_verifies(dev_issuer: DevIssuer) -> None:
    token = dev_issuer.token(
        project="vlab1/proj-a", role="admin", subject="ada", extra_groups=["/proj/v2/p2/member"]
    )
    assert dev_issuer.verifier().verify(token) == Principal(
        subject="ada",
        username="ada",
        memberships={"vlab1/proj-a": frozenset({"admin"}), "v2/p2": frozenset({"member"})},
    )


def test_dev_issuer_token_is_checked_like_any_other(dev_issuer: DevIssuer) -> None:
    verifier = dev_issuer.verifier()
    expired = dev_issuer.token(project="vlab1/proj-a", ttl_seconds=-60)
    assert rejection(verifier, expired) == "token expired"
    elsewhere = dev_issuer.token(project="vlab1/proj-a", audience="another-service")
    assert rejection(verifier, elsewhere) == "wrong audience"


def test_token_of_another_dev_issuer_is_rejected(dev_issuer: DevIssuer, tmp_path: Path) -> None:
    token = DevIssuer(tmp_path).token(project="vlab1/proj-a")
    assert rejection(dev_issuer.verifier(), token) == "unknown signing key"


@pytest.mark.parametrize(
    "project", ["proj-a", "vlab1/proj-a/x", "", "vlab 1/proj-a", "vlab1/", "/proj-a", "v/p\n"]
)
def test_dev_issuer_refuses_a_malformed_project(dev_issuer: DevIssuer, project: str) -> None:
    with pytest.raises(ValueError, match="project must be"):
        dev_issuer.token(project=project)


@pytest.mark.parametrize("role", ["", "admin/x", "ad min"])
def test_dev_issuer_refuses_a_malformed_role(dev_issuer: DevIssuer, role: str) -> None:
    with pytest.raises(ValueError, match="role must be"):
        dev_issuer.token(project="vlab1/proj-a", role=role)


def test_processes_creating_the_key_at_once_agree_on_it(tmp_path: Path) -> None:
    script = "import sys; from api.issuer import DevIssuer; print(DevIssuer(sys.argv[1]).kid)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(6)
    ]
    kids = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert kids == {DevIssuer(tmp_path).kid}
    assert os.listdir(tmp_path) == [KEY_FILE]


def test_remembered_tokens_skip_the_signature_check_but_not_expiry(key: SigningKey) -> None:
    with JwksServer([key.jwk()]) as server:
        verifier = remote_verifier(server, remember_seconds=60.0, leeway=0)
        token = key.sign(claims(exp=int(time.time()) + 2))
        assert verifier.verify(token).subject == "f3a1c2d4"
        server.keys = []  # even with the key gone, the remembered token is trusted …
        assert verifier.verify(token).subject == "f3a1c2d4"
        time.sleep(2.5 + 0.1)  # … but never past its exp
        with pytest.raises(AuthError):
            verifier.verify(token)


def test_remembered_answers_only_for_verified_unexpired_tokens(
    jwks: JwksServer, key: SigningKey
) -> None:
    """The app's hot path: a lookup that never checks a signature, so it must never answer
    for a token `verify` did not accept, nor past the token's exp."""
    verifier = remote_verifier(jwks, remember_seconds=60.0, leeway=0)
    token = key.sign(claims(exp=int(time.time()) + 2))
    assert verifier.remembered(token) is None  # not verified yet
    forged = rsa_key(key.kid).sign(claims())
    with pytest.raises(AuthError):
        verifier.verify(forged)
    assert verifier.remembered(forged) is None  # rejected tokens are not remembered
    assert verifier.verify(token).subject == "f3a1c2d4"
    assert verifier.remembered(token) == verifier.verify(token)
    time.sleep(2.5 + 0.1)
    assert verifier.remembered(token) is None
    assert remote_verifier(jwks).remembered(key.sign(claims())) is None  # not remembering
