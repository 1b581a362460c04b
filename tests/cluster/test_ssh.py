"""The SSH transport against the real sshd of the local SLURM (loopback).

Secrets Manager is moto's server over HTTP (a real AWS API endpoint on loopback).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from cluster.errors import (
    AuthenticationFailed,
    HostKeyRejected,
    HostUnreachable,
    RemoteCommandFailed,
    RemoteCommandTimeout,
)
from cluster.settings import SSHSettings
from cluster.ssh import SSHTransport
from tests.fixtures.slurm import cluster_settings

pytestmark = pytest.mark.slurm


def _ssh(env: dict[str, str], **changes: object) -> SSHSettings:
    return cluster_settings(env).ssh.model_copy(update=changes)


@pytest.fixture
def transport(slurm_env: dict[str, str]) -> Iterator[SSHTransport]:
    t = SSHTransport(_ssh(slurm_env))
    yield t
    t.close()


def test_runs_commands_with_stdin_and_reports_failures(transport: SSHTransport) -> None:
    assert transport.run_sync(["echo", "a b"]).stdout == "a b\n"
    assert transport.run_sync("cat", input="piped\n").stdout == "piped\n"
    assert transport.run_sync("sbatch --version").stdout.startswith("slurm")
    with pytest.raises(RemoteCommandFailed) as info:
        transport.run_sync("echo oops >&2; exit 3")
    assert info.value.exit_status == 3 and info.value.stderr == "oops\n"
    assert "status 3" in str(info.value) and "oops" in str(info.value)
    result = transport.run_sync("exit 4", check=False)
    assert result.exit_status == 4


def test_command_timeout(transport: SSHTransport) -> None:
    started = time.monotonic()
    with pytest.raises(RemoteCommandTimeout, match=r"did not finish within 0\.5s"):
        transport.run_sync("sleep 5", timeout=0.5)
    assert time.monotonic() - started < 4


def test_reconnects_after_the_connection_drops(transport: SSHTransport) -> None:
    transport.run_sync("true")
    transport.drop_connection()
    assert transport.run_sync("echo again").stdout == "again\n"


def test_files_in_one_command(transport: SSHTransport, slurm_env: dict[str, str]) -> None:
    folder = f"{slurm_env['ORCHESTRATOR_CLUSTER__SLURM__WORK_DIR']}/ssh-test-{time.time_ns()}"
    before = transport.commands_run
    transport.put_files_sync(folder, {"a.txt": b"A", "run.sh": b"echo hi\n"})
    assert transport.commands_run == before + 1
    assert transport.run_sync(["cat", f"{folder}/a.txt"]).stdout == "A"
    assert transport.run_sync(["bash", f"{folder}/run.sh"]).stdout == "hi\n"
    transport.run_sync(["rm", "-rf", folder])


def test_usable_from_any_event_loop(transport: SSHTransport) -> None:
    result = asyncio.run(transport.run(["echo", "from another loop"]))
    assert result.stdout == "from another loop\n"


def test_wrong_key_is_an_authentication_error(slurm_env: dict[str, str], tmp_path: Path) -> None:
    key = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(key)
    t = SSHTransport(_ssh(slurm_env, key_file=key))
    try:
        with pytest.raises(AuthenticationFailed, match="refused our key"):
            t.run_sync("true")
    finally:
        t.close()


def test_unknown_host_key_is_refused(slurm_env: dict[str, str]) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    port = slurm_env["ORCHESTRATOR_CLUSTER__SSH__PORT"]
    t = SSHTransport(_ssh(slurm_env, known_hosts=f"[127.0.0.1]:{port} {other}\n"))
    try:
        with pytest.raises(HostKeyRejected, match="host key"):
            t.run_sync("true")
    finally:
        t.close()


def test_unreachable_host(slurm_env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    t = SSHTransport(_ssh(slurm_env, port=port, reconnect_attempts=1, reconnect_backoff=0.05))
    try:
        with pytest.raises(HostUnreachable, match=f"127.0.0.1:{port}"):
            t.run_sync("true")
    finally:
        t.close()


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    try:
        yield url
    finally:
        server.stop()


@pytest.mark.aws
def test_key_from_secrets_manager(slurm_env: dict[str, str], secrets_manager: str) -> None:
    import boto3

    key_text = Path(slurm_env["ORCHESTRATOR_CLUSTER__SSH__KEY_FILE"]).read_text()
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="cluster-key", SecretString=key_text)["ARN"]
    t = SSHTransport(_ssh(slurm_env, key_file=None, key_secret_arn=arn))
    try:
        assert t.run_sync("echo via-secret").stdout == "via-secret\n"
    finally:
        t.close()
    missing = arn.rsplit(":", 1)[0] + ":nope-000000"
    t = SSHTransport(_ssh(slurm_env, key_file=None, key_secret_arn=missing))
    try:
        with pytest.raises(AuthenticationFailed, match="Secrets Manager") as info:
            t.run_sync("true")
        assert "PRIVATE KEY" not in str(info.value)
    finally:
        t.close()
