"""`orchestrator cluster …`: a project's HPC cluster through the provisioner (DESIGN.md)."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import click

from cluster.provisioner import (
    ClusterRecord,
    ClusterState,
    Provisioner,
    ProvisionerSettings,
    open_provisioner,
    to_yaml,
)
from orchestrator.cli.errors import EXIT_FAILED, handle_errors
from orchestrator.settings import load_settings

PROJECT = click.option("--project", required=True, help="VLAB/PROJECT")
KIND = click.option(
    "--kind",
    type=click.Choice(["local", "parallelcluster"]),
    help="The back end (default: the settings', else local).",
)


def _settings(kind: str | None) -> tuple[ProvisionerSettings, Any]:
    settings = load_settings()
    provisioner: ProvisionerSettings = settings.provisioner
    if kind is not None:
        provisioner = provisioner.model_copy(update={"kind": kind})
    return provisioner, settings.data_dir


def _provisioner(kind: str | None) -> Provisioner:
    settings, data_dir = _settings(kind)
    return open_provisioner(settings, data_dir=data_dir)


def _print(record: ClusterRecord) -> None:
    click.echo(json.dumps(record.to_dict(), indent=2))
    if record.state is ClusterState.FAILED:
        sys.exit(EXIT_FAILED)


@click.group(name="cluster")
def cluster() -> None:
    """A project's HPC cluster: its ParallelCluster configuration, create, status, delete."""


@cluster.command()
@PROJECT
@click.option("--tier", default="small", show_default=True)
@click.option("--no-lustre", is_flag=True, help="Without FSx for Lustre.")
@handle_errors
def config(project: str, tier: str, no_lustre: bool) -> None:
    """Print the ParallelCluster (v3) configuration the provisioner would create (the
    subnet is claimed from the pool at create time)."""
    from cluster.provisioner import render_config

    settings, _ = _settings(None)
    click.echo(to_yaml(render_config(settings, project, tier, no_lustre=no_lustre)), nl=False)


@cluster.command()
@PROJECT
@click.option("--tier", default="small", show_default=True)
@click.option("--no-lustre", is_flag=True, help="Without FSx for Lustre.")
@KIND
@handle_errors
def create(project: str, tier: str, no_lustre: bool, kind: str | None) -> None:
    """Create the project's cluster (or show the one it has); exit 1 if it failed."""
    _print(_provisioner(kind).create(project, tier, no_lustre=no_lustre))


@cluster.command()
@PROJECT
@KIND
@handle_errors
def status(project: str, kind: str | None) -> None:
    """The project's cluster record, its state refreshed from the back end."""
    _print(_provisioner(kind).status(project))


@cluster.command()
@PROJECT
@KIND
@handle_errors
def delete(project: str, kind: str | None) -> None:
    """Delete the project's cluster (safe to repeat)."""
    _print(_provisioner(kind).delete(project))


@cluster.command()
@click.option("--project", required=True, help="vlab_id/project_id")
@click.option("--kind", type=click.Choice(["local", "parallelcluster"]), default=None)
@handle_errors
def env(project: str, kind: str | None) -> None:
    """The service's settings for the project's ready cluster, as shell exports
    (eval "$(orchestrator cluster env --project P)" then orchestrator serve)."""
    for name, value in _provisioner(kind).cluster_environment(project).items():
        click.echo(f"export {name}={shlex.quote(value)}")


@cluster.command("teardown-idle")
@KIND
@handle_errors
def teardown_idle(kind: str | None) -> None:
    """Delete every ready cluster whose project ran no campaign for `provisioner.idle_timeout`
    seconds (from this service's store); prints the projects torn down. Safe to run from cron;
    `serve` also runs it every `provisioner.teardown_interval` seconds."""
    from orchestrator.idle import teardown_idle_clusters
    from orchestrator.service import Service

    service = Service(load_settings())
    try:
        for project in teardown_idle_clusters(_provisioner(kind), service):
            click.echo(project)
    finally:
        service.close()
