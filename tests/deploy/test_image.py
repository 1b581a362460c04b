"""The service image's definition (deploy/Dockerfile), checked without a container runtime
(this machine has no Docker daemon): it installs every package the project declares, runs as
a user of its own, and with its environment and command `serve` refuses to start on the
embedded development issuer, naming the settings of an external one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
            current = ""
    return found


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _instructions():
        if word == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def test_the_image_installs_every_declared_package_and_runs_unprivileged() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {rest.split()[0] for word, rest in _instructions() if word == "COPY"}
    for pattern in packages:
        assert pattern.rstrip("*") in copied, f"{pattern} is not copied into the image"
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert _env()["ORCHESTRATOR_AUTH__DEV_ISSUER"] == "forbidden"


def test_the_images_command_refuses_the_development_issuer(tmp_path: Path) -> None:
    cmd = next(json.loads(rest) for word, rest in _instructions() if word == "CMD")
    assert cmd[:2] == ["orchestrator", "serve"]
    args = cmd[2:]
    args[args.index("--host") + 1] = "127.0.0.1"  # tests listen on loopback only
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **_env(),
        "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "serve", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "development issuer is forbidden" in done.stderr
    assert "ORCHESTRATOR_AUTH__JWKS_URL" in done.stderr
    assert not (tmp_path / "data" / "dev-issuer-key.pem").exists()
