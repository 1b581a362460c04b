"""The `orchestrator` command (DESIGN.md: CLI). Works on the embedded default directly."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

import click

from cluster import ClusterError, open_compute
from orchestrator.cli.cluster import cluster as cluster_group
from orchestrator.cli.kg import kg
from orchestrator.cli.output import as_json, format_event, print_list, print_status
from orchestrator.cli.progress import StepProgress
from orchestrator.cli.remote import event_record, remote, remote_document
from orchestrator.client import ClientError
from orchestrator.dashboard import campaigns_url, register_campaigns_page
from orchestrator.errors import CampaignBusy, OrchestratorError, SpecError
from orchestrator.service import Service, submit_paths
from orchestrator.settings import load_settings
from orchestrator.spec import CampaignSpec, add_import_paths, load_file, parse_document
from orchestrator.states import CAMPAIGN_TERMINAL, CampaignState
from orchestrator.status import all_succeeded

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Known errors become one clear line on stderr and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            click.echo("invalid campaign spec:", err=True)
            for issue in exc.issues:
                click.echo(f"  {issue}", err=True)
            sys.exit(EXIT_INVALID)
        except ClientError as exc:
            if exc.status == 422 and exc.errors:  # the server found the spec invalid
                click.echo("invalid campaign spec:", err=True)
                for issue in exc.issues:
                    click.echo(f"  {issue}", err=True)
                sys.exit(EXIT_INVALID)
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except (OrchestratorError, ClusterError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def _service() -> Service:
    return Service(load_settings())


def _quiet_dask() -> None:
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "bokeh"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", message="Port .* is already in use")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workflow-orchestrator")
def cli() -> None:
    """Run simulation campaigns on Dask: durable, resumable, steerable."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# ----------------------------------------------------------------------- running
def _load_spec(path: str, results: str | None) -> CampaignSpec:
    add_import_paths(submit_paths(path))
    spec = load_file(path)
    if results is not None:
        spec = parse_document({**spec.to_document(), "results": results})
    return spec


def _run_campaigns(service: Service, ids: list[str], as_json_output: bool) -> int:
    """Run campaigns one after another on one compute; exit code over all of them."""
    _quiet_dask()
    records = [service.store.get_campaign(cid) for cid in ids]
    for record in records:  # workers must be able to import every campaign's callables
        add_import_paths(record.import_paths or [])
    register_campaigns_page(service.store)  # in the dashboard of the scheduler started next
    try:
        compute = open_compute(service.settings.cluster)
    except ClusterError as exc:
        for record in records:
            if record.state == CampaignState.ACCEPTED:
                service.store.set_campaign_state(
                    record.id, CampaignState.FAILED, f"cannot start the project's compute: {exc}"
                )
        raise
    registrar = service.start_registrar()  # provenance, sent while the campaign runs
    try:
        with compute:
            return _run_on(service, compute, records, as_json_output)
    finally:
        # what the knowledge graph did not take yet stays in the store's outbox: the next
        # run, resume or serve sends it
        registrar.close(drain=10.0)


def _run_on(service: Service, compute: Any, records: list[Any], as_json_output: bool) -> int:
    code = EXIT_OK
    if compute.dashboard_link and not as_json_output:
        click.echo(f"dashboard: {compute.dashboard_link}", err=True)
        click.echo(f"campaigns: {campaigns_url(compute.dashboard_link)}", err=True)
    for record in records:
        status = service.status(record.id)
        steps = {name: counts["total"] for name, counts in status["steps"].items()}
        click.echo(f"campaign {record.id} ({record.name}): {record.points} point(s)", err=True)
        try:
            with StepProgress(steps) as progress:
                service.run(record.id, compute, progress)
        except CampaignBusy as exc:
            click.echo(f"skipped: {exc}", err=True)
            code = EXIT_FAILED
            continue
        except KeyboardInterrupt:
            click.echo(
                f"\ninterrupted: campaign {record.id} keeps what finished; "
                "`orchestrator resume` continues it",
                err=True,
            )
            return EXIT_INTERRUPTED
        final = service.status(record.id)
        if as_json_output:
            click.echo(as_json(final))
        else:
            print_status(final)
        if not all_succeeded(final):
            code = EXIT_FAILED
    return code


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--json", "as_json_output", is_flag=True, help="Print the final status as JSON.")
@click.option("--results", help="Override the spec's results location.")
@handle_errors
def run(spec: str, as_json_output: bool, results: str | None) -> None:
    """Run a campaign in the foreground, with live progress."""
    client = remote()
    if client is not None:
        with client:
            made = client.submit(remote_document(spec, results))
            click.echo(
                f"campaign {made['id']} ({made['name']}): {made['points']} point(s)", err=True
            )
            try:
                final = client.wait(made["id"], progress=True)
            except KeyboardInterrupt:
                click.echo(f"\ninterrupted: campaign {made['id']} goes on on the server", err=True)
                sys.exit(EXIT_INTERRUPTED)
        click.echo(as_json(final)) if as_json_output else print_status(final)
        sys.exit(EXIT_OK if all_succeeded(final) else EXIT_FAILED)
    campaign = _load_spec(spec, results)
    service = _service()
    campaign_id = service.submit(campaign, import_paths=submit_paths(spec))
    sys.exit(_run_campaigns(service, [campaign_id], as_json_output))


@cli.command()
@click.option(
    "--results", default="./results", show_default=True, help="Where the demo writes its results."
)
@click.option("--json", "as_json_output", is_flag=True, help="Print the final status as JSON.")
@handle_errors
def demo(results: str, as_json_output: bool) -> None:
    """The bundled NEURON f–I campaign (Hodgkin–Huxley soma, eFEL) on the embedded default."""
    text = resources.files("orchestrator.demo").joinpath("fi_curve.yaml").read_text()
    import yaml

    document = yaml.safe_load(text)
    document["results"] = results
    campaign = parse_document(document)
    service = _service()
    campaign_id = service.submit(campaign, import_paths=[])
    code = _run_campaigns(service, [campaign_id], as_json_output)
    summary = service.store.get_task(campaign_id, "summary", None)
    if summary is not None and summary.state == "succeeded" and not as_json_output:
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
    client = remote()
    if client is not None:
        with client:
            click.echo(client.submit(remote_document(spec, results))["id"])
        return
    campaign = _load_spec(spec, results)
    click.echo(_service().submit(campaign, import_paths=submit_paths(spec)))


@cli.command()
@handle_errors
def resume() -> None:
    """Continue every unfinished campaign in the store (what was finished is not redone)."""
    service = _service()
    ids = service.unfinished()
    if not ids:
        click.echo("nothing to resume", err=True)
        sys.exit(EXIT_OK)
    sys.exit(_run_campaigns(service, ids, False))


@cli.command()
@click.argument("campaign_id")
@click.option("--detach", is_flag=True, help="Only reset the tasks; let `resume` run them.")
@handle_errors
def restart(campaign_id: str, detach: bool) -> None:
    """Run a campaign's failed and cancelled tasks again (and what they held)."""
    client = remote()
    if client is not None:
        with client:
            state = client.restart(campaign_id)["state"]
        click.echo(f"campaign {campaign_id} restarted ({state}); the server runs it", err=True)
        return
    service = _service()
    n = service.restart(campaign_id)
    click.echo(f"{n} task(s) back to pending", err=True)
    if not detach:
        sys.exit(_run_campaigns(service, [campaign_id], False))


# ---------------------------------------------------------------------- inspecting
@cli.command()
@click.argument("campaign_id")
@click.option("--json", "as_json_output", is_flag=True)
@handle_errors
def status(campaign_id: str, as_json_output: bool) -> None:
    """A campaign's state and task counts per step."""
    client = remote()
    if client is not None:
        with client:
            result = client.status(campaign_id)
    else:
        result = _service().status(campaign_id)
    click.echo(as_json(result)) if as_json_output else print_status(result)


@cli.command(name="list")
@click.option("--json", "as_json_output", is_flag=True)
@click.option("--state", help="Only campaigns in this state.")
@click.option("--name", help="Only campaigns with this name.")
@click.option("--limit", default=50, show_default=True)
@handle_errors
def list_(as_json_output: bool, state: str | None, name: str | None, limit: int) -> None:
    """Campaigns, newest first."""
    client = remote()
    if client is not None:
        with client:
            result = client.list(state=state, name=name, limit=limit)
    else:
        result = _service().list_campaigns(state=state, name=name, limit=limit)
    click.echo(as_json(result)) if as_json_output else print_list(result)


@cli.command()
@click.argument("campaign_id")
@click.option("--step", help="Cancel only this step (and what needs it).")
@click.option("--point", type=int, help="Cancel only this point (with --step: one task).")
@handle_errors
def cancel(campaign_id: str, step: str | None, point: int | None) -> None:
    """Cancel a campaign, a step or a point; its runner stops the tasks."""
    client = remote()
    if client is not None:
        with client:
            client.cancel(campaign_id, step=step, point=point)
    else:
        _service().cancel(campaign_id, step=step, point=point)
    scope = "campaign" if step is None and point is None else "tasks"
    click.echo(f"cancel {scope} requested for {campaign_id}", err=True)


@cli.command()
@click.argument("campaign_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the end.")
@click.option("--after", default=0, show_default=True, help="Only events after this number.")
@click.option("--json", "as_json_output", is_flag=True, help="One JSON object per line.")
@handle_errors
def events(campaign_id: str, follow: bool, after: int, as_json_output: bool) -> None:
    """A campaign's event history (append-only, numbered)."""
    client = remote()
    if client is not None:
        with client:
            for item in client.events(campaign_id, after=after, follow=follow):
                record = event_record(item)
                click.echo(as_json(record.to_json()) if as_json_output else format_event(record))
        return
    service = _service()
    while True:
        batch = service.events(campaign_id, after=after, limit=5000)
        for event in batch:
            click.echo(as_json(event.to_json()) if as_json_output else format_event(event))
            after = event.seq
        if batch:
            continue
        if not follow or service.store.get_campaign(campaign_id).state in CAMPAIGN_TERMINAL:
            # one last read: events written just before the final state
            for event in service.events(campaign_id, after=after, limit=5000):
                click.echo(as_json(event.to_json()) if as_json_output else format_event(event))
            return
        time.sleep(0.5)


@cli.command()
@click.argument("campaign_id")
@click.argument("task")
@handle_errors
def logs(campaign_id: str, task: str) -> None:
    """A task's history, error and log files (TASK is STEP or STEP/POINT)."""
    client = remote()
    if client is not None:
        with client:
            click.echo(client.logs(campaign_id, task))
    else:
        click.echo(_service().logs(campaign_id, task))


@cli.command()
@click.argument("campaign_id")
@handle_errors
def results(campaign_id: str) -> None:
    """The manifest so far: one JSON line per finished task (point, parameters, result)."""
    from orchestrator.results import ResultsLocation

    record = _service().store.get_campaign(campaign_id)
    for entry in ResultsLocation(record.results_url).read_manifest():
        click.echo(as_json(entry))


# --------------------------------------------------------------------------- serving
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@handle_errors
def serve(host: str, port: int) -> None:
    """The REST API; runs the submitted campaigns of the projects it serves."""
    import uvicorn

    from api.main import create_app

    _quiet_dask()
    logging.getLogger("orchestrator.access").setLevel(logging.INFO)
    settings = load_settings()
    if not settings.auth.jwks_url:
        click.echo(
            "auth: embedded development issuer (`orchestrator token` makes tokens)", err=True
        )
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_level="warning")


@cli.command()
@click.option("--project", required=True, help="VLAB/PROJECT the token is a member of.")
@click.option("--role", default="member", show_default=True, type=click.Choice(["member", "admin"]))
@click.option("--user", default="dev-user", show_default=True)
@click.option("--ttl", default=3600, show_default=True, help="Lifetime in seconds.")
@handle_errors
def token(project: str, role: str, user: str, ttl: int) -> None:
    """A token from the embedded development issuer (the default `serve` accepts it)."""
    from api.issuer import DevIssuer

    settings = load_settings()
    if settings.auth.jwks_url:
        raise click.UsageError("an external issuer is configured: get tokens from it")
    try:
        click.echo(
            DevIssuer(settings.data_dir).token(
                project=project,
                role=role,
                subject=user,
                audience=settings.auth.audience,
                ttl_seconds=ttl,
            )
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--project") from None


cli.add_command(kg)
cli.add_command(cluster_group)


def main() -> None:
    cli(prog_name="orchestrator")


__all__ = ["cli", "main"]
