"""The embedded development issuer serves on loopback only, unless allowed explicitly, and
never where it is forbidden (the service image sets `ORCHESTRATOR_AUTH__DEV_ISSUER=forbidden`).

`serve` is run through click's CliRunner with `uvicorn.run` replaced by a recorder: what is
tested is whether `serve` goes on to serve, on which host; nothing binds a non-loopback address.
One refusal runs the real `orchestrator` command in a subprocess, as the image's CMD does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.cli import serve, token
from api.errors import DevIssuerRefused
from api.issuer import KEY_FILE, check_dev_issuer, is_loopback
from api.main import create_app
from orchestrator.settings import AuthSettings, Settings
from tests.api.jwks_server import JwksServer

REPO = Path(__file__).resolve().parents[2]
FIX = "ORCHESTRATOR_AUTH__JWKS_URL"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The hosts `serve` went on to serve on (uvicorn.run recorded, not run)."""
    for name in list(os.environ):
        if name.startswith("ORCHESTRATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(tmp_path / "no-such.toml"))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: calls.append(kwargs))
    return calls


def _serve(*args: str) -> Any:
    return CliRunner().invoke(serve, ["--port", "8123", *args])


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_the_dev_issuer_serves_on_loopback(served: list[dict[str, Any]], host: str):
    done = _serve("--host", host)
    assert done.exit_code == 0, done.output
    assert [call["host"] for call in served] == [host]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_elsewhere_serve_exits_2_naming_the_fix(
    served: list[dict[str, Any]], host: str, tmp_path: Path
):
    done = _serve("--host", host)
    assert done.exit_code == 2, done.output
    assert not served
    assert "not a loopback address" in done.stderr
    assert FIX in done.stderr and "--allow-dev-issuer" in done.stderr
    assert not (tmp_path / "data" / KEY_FILE).exists()  # refused before any key was made


def test_allowed_by_the_flag_or_the_setting(served: list[dict[str, Any]], monkeypatch):
    assert _serve("--host", "0.0.0.0", "--allow-dev-issuer").exit_code == 0
    monkeypatch.setenv("ORCHESTRATOR_AUTH__DEV_ISSUER", "allowed")
    assert _serve("--host", "0.0.0.0").exit_code == 0
    assert [call["host"] for call in served] == ["0.0.0.0", "0.0.0.0"]


def test_an_external_issuer_serves_anywhere(served: list[dict[str, Any]], monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_AUTH__JWKS_URL", "https://keycloak.test/certs")
    monkeypatch.setenv("ORCHESTRATOR_AUTH__ISSUER", "https://keycloak.test/realms/platform")
    monkeypatch.setenv("ORCHESTRATOR_AUTH__DEV_ISSUER", "forbidden")  # as in the image
    done = _serve("--host", "0.0.0.0")
    assert done.exit_code == 0, done.output
    assert [call["host"] for call in served] == ["0.0.0.0"]


def test_forbidden_wins_over_the_flag_and_loopback(served: list[dict[str, Any]], monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_AUTH__DEV_ISSUER", "forbidden")
    for args in (["--host", "0.0.0.0", "--allow-dev-issuer"], ["--host", "127.0.0.1"]):
        done = _serve(*args)
        assert done.exit_code == 2, done.output
        assert "forbidden" in done.stderr and FIX in done.stderr
    assert not served
    made = CliRunner().invoke(token, ["--project", "lab/p1"])
    assert made.exit_code == 1 and "forbidden" in made.stderr
    assert made.stdout == ""  # no token printed


def test_a_bad_setting_is_named(served: list[dict[str, Any]], monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_AUTH__DEV_ISSUER", "yes")
    done = _serve("--host", "127.0.0.1")
    assert done.exit_code == 1 and "auth.dev_issuer" in done.stderr
    assert not served


def test_the_image_setting_refuses_the_real_command(tmp_path: Path):
    """`orchestrator serve` as the image runs it (its environment, the flag added)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(
        ORCHESTRATOR_DATA_DIR=str(tmp_path / "data"),
        ORCHESTRATOR_CONFIG=str(tmp_path / "no-such.toml"),
        ORCHESTRATOR_AUTH__DEV_ISSUER="forbidden",
        PYTHONPATH=str(REPO),
    )
    argv = [sys.executable, "-m", "orchestrator.cli", "serve", "--host", "127.0.0.1"]
    done = subprocess.run(
        [*argv, "--port", "0", "--allow-dev-issuer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "ORCHESTRATOR_AUTH__DEV_ISSUER=forbidden" in done.stderr and FIX in done.stderr
    assert "Traceback" not in done.stderr


def test_an_app_refuses_to_start_where_the_dev_issuer_is_forbidden(app_settings: Settings):
    """Whatever starts the app (not only `serve`): its start-up fails, no key is made."""
    forbidden = app_settings.model_copy(update={"auth": AuthSettings(dev_issuer="forbidden")})
    with (
        pytest.raises(DevIssuerRefused, match="forbidden"),
        TestClient(create_app(forbidden, run_campaigns=False)),
    ):
        pass
    assert not (app_settings.data_dir / KEY_FILE).exists()
    with JwksServer([]) as keycloak:
        external = AuthSettings(jwks_url=keycloak.url, issuer="kc", dev_issuer="forbidden")
        settings = app_settings.model_copy(update={"auth": external})
        with TestClient(create_app(settings, run_campaigns=False)) as http:
            assert http.get("/dev-issuer/jwks.json").json() == {"keys": []}


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["", "0.0.0.0", "::", "10.0.0.1", "no-such-host.invalid"]))
    with pytest.raises(DevIssuerRefused, match=r"'10\.0\.0\.1'"):
        check_dev_issuer(AuthSettings(), "10.0.0.1")
    check_dev_issuer(AuthSettings(), "10.0.0.1", allow=True)
