"""`orchestrator db …`: the state store's schema, and each project's database role.

These act on the store `ORCHESTRATOR_DB_URL` names, as its owner (the front door's role).
A project's password leaves only through `grant-project --print-url`, on stdout, for the
environment of that project's instance.
"""

from __future__ import annotations

import click

from orchestrator.cli.errors import handle_errors
from orchestrator.settings import load_settings
from orchestrator.store import Store
from orchestrator.store.isolation import grant_project, revoke_project


@click.group()
def db() -> None:
    """The state store: schema migrations and per-project database roles (PostgreSQL)."""


@db.command()
@handle_errors
def migrate() -> None:
    """Bring the store's schema to the newest revision (a no-op when it is there)."""
    store = Store(load_settings().database_url)
    try:
        store.migrate()
    finally:
        store.close()
    click.echo("the store's schema is up to date", err=True)


@db.command(name="grant-project")
@click.argument("project")
@click.option(
    "--print-url",
    is_flag=True,
    help="Print the role's database URL, password included, on stdout (for the instance).",
)
@handle_errors
def grant_project_command(project: str, print_url: bool) -> None:
    """Create or update PROJECT's role (VLAB/PROJECT): it reads and writes only that
    project's rows. Safe to repeat; each run sets a new password."""
    grant = grant_project(load_settings().database_url, project)
    if print_url:
        click.echo(grant.url)
    click.echo(
        f"role {grant.role} may use project {project}'s rows in database {grant.database}",
        err=True,
    )


@db.command(name="revoke-project")
@click.argument("project")
@handle_errors
def revoke_project_command(project: str) -> None:
    """Drop PROJECT's role (VLAB/PROJECT); its instance can no longer connect."""
    if revoke_project(load_settings().database_url, project):
        click.echo(f"project {project}'s role is dropped", err=True)
    else:
        click.echo(f"project {project} had no role", err=True)
