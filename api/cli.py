"""The CLI's commands that need the REST API: `orchestrator serve` and `orchestrator token`.

They are registered under the `orchestrator.commands` entry point group (pyproject.toml), so
that the `orchestrator` command lists them while `orchestrator/` never imports `api/`.
"""

from __future__ import annotations

import logging
import sys

import click

from orchestrator.cli.errors import EXIT_INVALID, handle_errors
from orchestrator.settings import Settings, load_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--allow-dev-issuer",
    is_flag=True,
    help="Serve the embedded development issuer on a non-loopback address too.",
)
@handle_errors
def serve(host: str, port: int, allow_dev_issuer: bool) -> None:
    """The REST API; runs the submitted campaigns of the projects it serves."""
    import uvicorn

    from api.main import create_app
    from orchestrator.cli.quiet import quiet_dask

    quiet_dask()
    logging.getLogger("orchestrator.access").setLevel(logging.INFO)
    settings = load_settings()
    _check_dev_issuer(settings, host, allow_dev_issuer)
    if not settings.auth.jwks_url:
        click.echo(
            "auth: embedded development issuer (`orchestrator token` makes tokens)", err=True
        )
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_level="warning")


def _check_dev_issuer(settings: Settings, host: str, allow: bool) -> None:
    """Exit 2, naming the fix, where the development issuer may not serve."""
    from api.errors import DevIssuerRefused
    from api.issuer import check_dev_issuer

    try:
        check_dev_issuer(settings.auth, host, allow=allow)
    except DevIssuerRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)


@click.command()
@click.option("--project", required=True, help="VLAB/PROJECT the token is a member of.")
@click.option("--role", default="member", show_default=True, type=click.Choice(["member", "admin"]))
@click.option("--user", default="dev-user", show_default=True)
@click.option("--ttl", default=3600, show_default=True, help="Lifetime in seconds.")
@handle_errors
def token(project: str, role: str, user: str, ttl: int) -> None:
    """A token from the embedded development issuer (the default `serve` accepts it)."""
    from api.issuer import open_dev_issuer

    settings = load_settings()
    if settings.auth.jwks_url:
        raise click.UsageError("an external issuer is configured: get tokens from it")
    try:
        click.echo(
            open_dev_issuer(settings.data_dir, settings.auth).token(
                project=project,
                role=role,
                subject=user,
                audience=settings.auth.audience,
                ttl_seconds=ttl,
            )
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--project") from None
