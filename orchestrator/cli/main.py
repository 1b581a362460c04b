"""The `orchestrator` command (DESIGN.md: CLI). Works on the embedded default directly, or on
the server ORCHESTRATOR_URL names: every command talks to a backend (orchestrator.backends)
and does not ask which one, but `run` and `restart`, which run the campaign here when it
lives here."""

from __future__ import annotations

import logging
import sys
from functools import cache
from importlib import resources
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from cluster import ClusterError, open_compute
from orchestrator.backends import Backend, EmbeddedBackend, HTTPBackend, open_backend
from orchestrator.cli.cluster import cluster as cluster_group
from orchestrator.cli.db import db
from orchestrator.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    handle_errors,
)
from orchestrator.cli.kg import kg
from orchestrator.cli.output import as_json, format_event, print_list, print_status
from orchestrator.cli.progress import StepProgress
from orchestrator.cli.quiet import quiet_dask
from orchestrator.client import ClientError
from orchestrator.dashboard import campaigns_url, register_campaigns_page
from orchestrator.errors import CampaignBusy, InvalidThrottle
from orchestrator.kg.process import RegistrarProcess
from orchestrator.service import Service
from orchestrator.shutdown import interrupt_on_terminate
from orchestrator.spec import import_paths_for, read_document
from orchestrator.states import CampaignState, TaskState
from orchestrator.status import all_succeeded

COMMANDS = "orchestrator.commands"  # entry point group: commands of other packages (api)
REGISTRAR_DRAIN = 10.0  # seconds `run` gives the registrar to send what is left at the end


@cache
def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=COMMANDS)}


class Commands(click.Group):
    """Ours, and those registered under the `orchestrator.commands` entry point group,
    loaded only when named (a plain `status` imports no web framework)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _plugins():
            command = _plugins()[cmd_name].load()
        return command


def _backend() -> Backend:
    return open_backend()


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workflow-orchestrator")
def cli() -> None:
    """Run simulation campaigns on Dask: durable, resumable, steerable."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# ----------------------------------------------------------------------- running
def _document(path: str, results: str | None) -> dict[str, Any]:
    document = read_document(path)
    return document if results is None else {**document, "results": results}


def _run_campaigns(service: Service, ids: list[str], as_json_output: bool) -> int:
    """Run campaigns here, one after another on one compute; exit code over all of them."""
    quiet_dask()
    records = [service.campaign(cid) for cid in ids]
    if service.settings.cluster.dashboard:  # Bokeh's import alone takes about a second
        register_campaigns_page(service)  # in the dashboard of the scheduler started next
    try:
        compute = open_compute(service.settings.cluster)
    except ClusterError as exc:
        for record in records:
            if record.state == CampaignState.ACCEPTED:
                service.fail(record.id, f"cannot start the project's compute: {exc}")
        raise
    registrar = service.start_registrar()  # provenance, sent while the campaign runs
    try:
        # SIGTERM stops it as Ctrl-C does; either ends the process within the grace
        with interrupt_on_terminate(service.settings.shutdown_grace, EXIT_INTERRUPTED), compute:
            try:
                return _run_on(service, compute, ids, as_json_output)
            finally:
                if isinstance(registrar, RegistrarProcess):
                    registrar.finish(drain=REGISTRAR_DRAIN)  # sends while the compute closes
    finally:
        # what the knowledge graph did not take yet stays in the store's outbox: the next
        # run, resume or serve sends it
        registrar.close(drain=REGISTRAR_DRAIN)


def _run_on(service: Service, compute: Any, ids: list[str], as_json_output: bool) -> int:
    code = EXIT_OK
    if compute.dashboard_link and not as_json_output:
        click.echo(f"dashboard: {compute.dashboard_link}", err=True)
        click.echo(f"campaigns: {campaigns_url(compute.dashboard_link)}", err=True)
    for campaign_id in ids:
        status = service.status(campaign_id)
        steps = {name: counts["total"] for name, counts in status["steps"].items()}
        click.echo(
            f"campaign {campaign_id} ({status['name']}): {status['points']} point(s)", err=True
        )
        try:
            with StepProgress(steps) as progress:
                service.run(campaign_id, compute, progress)
        except CampaignBusy as exc:
            click.echo(f"skipped: {exc}", err=True)
            code = EXIT_FAILED
            continue
        except KeyboardInterrupt:
            click.echo(
                f"\ninterrupted: campaign {campaign_id} keeps what finished; "
                "`orchestrator resume` continues it",
                err=True,
            )
            return EXIT_INTERRUPTED
        final = service.status(campaign_id)
        if as_json_output:
            click.echo(as_json(final))
        else:
            print_status(final)
        if not all_succeeded(final):
            code = EXIT_FAILED
    return code


def _wait_on_server(backend: HTTPBackend, campaign_id: str) -> dict[str, Any]:
    try:
        return backend.wait(campaign_id, progress=True)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: campaign {campaign_id} goes on on the server", err=True)
        sys.exit(EXIT_INTERRUPTED)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--json", "as_json_output", is_flag=True, help="Print the final status as JSON.")
@click.option("--results", help="Override the spec's results location.")
@handle_errors
def run(spec: str, as_json_output: bool, results: str | None) -> None:
    """Run a campaign in the foreground, with live progress."""
    with _backend() as backend:
        campaign_id = backend.submit(_document(spec, results), import_paths_for(spec))
        if isinstance(backend, EmbeddedBackend):
            sys.exit(_run_campaigns(backend.service, [campaign_id], as_json_output))
        assert isinstance(backend, HTTPBackend)
        made = backend.status(campaign_id)
        click.echo(f"campaign {campaign_id} ({made['name']}): {made['points']} point(s)", err=True)
        final = _wait_on_server(backend, campaign_id)
    click.echo(as_json(final)) if as_json_output else print_status(final)
    sys.exit(EXIT_OK if all_succeeded(final) else EXIT_FAILED)


@cli.command()
@click.option(
    "--results", default=None, help="Where the demo writes its results (default: results_url)."
)
@click.option("--json", "as_json_output", is_flag=True, help="Print the final status as JSON.")
@handle_errors
def demo(results: str | None, as_json_output: bool) -> None:
    """The bundled NEURON f–I campaign (Hodgkin–Huxley soma, eFEL) on the embedded default."""
    import yaml

    text = resources.files("orchestrator.demo").joinpath("fi_curve.yaml").read_text()
    document = {**yaml.safe_load(text), **({"results": results} if results else {})}
    with EmbeddedBackend.open() as backend:
        service = backend.service
        campaign_id = service.submit_document(document)
        code = _run_campaigns(service, [campaign_id], as_json_output)
        summary = service.task(campaign_id, "summary")
    if summary.state == TaskState.SUCCEEDED and not as_json_output:
        result = summary.result or {}
        click.echo(f"f–I curves: {result.get('plot')}")
        click.echo(f"table:      {result.get('table')}")
        for gnabar, rheobase in (result.get("rheobase_nA") or {}).items():
            shown = "no spike in range" if rheobase is None else f"{rheobase:.4g} nA"
            click.echo(f"rheobase at gnabar={gnabar} S/cm²: {shown}")
    sys.exit(code)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--results", help="Override the spec's results location.")
@handle_errors
def submit(spec: str, results: str | None) -> None:
    """Store a campaign and print its id; `resume` (or a server) runs it."""
    with _backend() as backend:
        click.echo(backend.submit(_document(spec, results), import_paths_for(spec)))


@cli.command()
@handle_errors
def resume() -> None:
    """Continue every unfinished campaign in the store (what was finished is not redone)."""
    with EmbeddedBackend.open() as backend:
        ids = backend.service.unfinished()
        if not ids:
            click.echo("nothing to resume", err=True)
            sys.exit(EXIT_OK)
        sys.exit(_run_campaigns(backend.service, ids, False))


@cli.command()
@click.argument("campaign_id")
@click.option("--detach", is_flag=True, help="Only reset the tasks; let `resume` run them.")
@handle_errors
def restart(campaign_id: str, detach: bool) -> None:
    """Run a campaign's failed and cancelled tasks again (and what they held)."""
    with _backend() as backend:
        if not isinstance(backend, EmbeddedBackend):
            state = backend.restart(campaign_id)["state"]
            click.echo(f"campaign {campaign_id} restarted ({state}); the server runs it", err=True)
            return
        n = backend.service.restart(campaign_id)
        click.echo(f"{n} task(s) back to pending", err=True)
        if not detach:
            sys.exit(_run_campaigns(backend.service, [campaign_id], False))


# ---------------------------------------------------------------------- inspecting
@cli.command()
@click.argument("campaign_id")
@click.option("--json", "as_json_output", is_flag=True)
@handle_errors
def status(campaign_id: str, as_json_output: bool) -> None:
    """A campaign's state and task counts per step."""
    with _backend() as backend:
        result = backend.status(campaign_id)
    click.echo(as_json(result)) if as_json_output else print_status(result)


@cli.command(name="list")
@click.option("--json", "as_json_output", is_flag=True)
@click.option("--state", help="Only campaigns in this state.")
@click.option("--name", help="Only campaigns with this name.")
@click.option("--limit", default=50, show_default=True)
@handle_errors
def list_(as_json_output: bool, state: str | None, name: str | None, limit: int) -> None:
    """Campaigns, newest first."""
    with _backend() as backend:
        result = backend.list(state=state, name=name, limit=limit)
    click.echo(as_json(result)) if as_json_output else print_list(result)


@cli.command()
@click.argument("campaign_id")
@click.option("--step", help="Cancel only this step (and what needs it).")
@click.option("--point", type=int, help="Cancel only this point (with --step: one task).")
@handle_errors
def cancel(campaign_id: str, step: str | None, point: int | None) -> None:
    """Cancel a campaign, a step or a point; its runner stops the tasks."""
    with _backend() as backend:
        backend.cancel(campaign_id, step, point)
    scope = "campaign" if step is None and point is None else "tasks"
    click.echo(f"cancel {scope} requested for {campaign_id}", err=True)


@cli.command()
@click.argument("campaign_id")
@click.argument("limit", type=click.IntRange(min=1))
@click.option("--step", help="A batch step: at most LIMIT tasks of each of its job arrays.")
@handle_errors
def throttle(campaign_id: str, limit: int, step: str | None) -> None:
    """Change a running campaign's concurrency: at most LIMIT points in flight, or with
    --step, LIMIT tasks at once of each of a batch step's job arrays (exit 2 when the step
    is not one of its batch steps)."""
    with _backend() as backend:
        try:
            backend.throttle(campaign_id, limit, step)
        except ClientError as exc:
            if exc.status != 422:
                raise
            field = str(exc.errors[0].get("field", "step")) if exc.errors else "step"
            raise InvalidThrottle(field, exc.detail or str(exc)) from exc
    scope = f"at most {limit} point(s) in flight"
    if step is not None:
        scope = f"step {step}: at most {limit} task(s) of each job array"
    click.echo(f"throttle requested for {campaign_id}: {scope}", err=True)


@cli.command()
@click.argument("campaign_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the end.")
@click.option("--after", default=0, show_default=True, help="Only events after this number.")
@click.option("--json", "as_json_output", is_flag=True, help="One JSON object per line.")
@handle_errors
def events(campaign_id: str, follow: bool, after: int, as_json_output: bool) -> None:
    """A campaign's event history (append-only, numbered)."""
    with _backend() as backend:
        for event in backend.events(campaign_id, after, follow):
            click.echo(as_json(event) if as_json_output else format_event(event))


@cli.command()
@click.argument("campaign_id")
@click.argument("task")
@handle_errors
def logs(campaign_id: str, task: str) -> None:
    """A task's history, error and log files (TASK is STEP or STEP/POINT)."""
    with _backend() as backend:
        click.echo(backend.logs(campaign_id, task))


@cli.command()
@click.argument("campaign_id")
@handle_errors
def results(campaign_id: str) -> None:
    """The manifest so far: one JSON line per finished task (point, parameters, result)."""
    with EmbeddedBackend.open() as backend:
        for entry in backend.service.manifest(campaign_id):
            click.echo(as_json(entry))


cli.add_command(kg)
cli.add_command(cluster_group)
cli.add_command(db)


def main() -> None:
    cli(prog_name="orchestrator")


__all__ = ["cli", "main"]
