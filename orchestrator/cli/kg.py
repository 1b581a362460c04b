"""`orchestrator kg …`: the embedded knowledge graph, from the command line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from orchestrator.cli.errors import EXIT_FAILED, EXIT_INVALID
from orchestrator.cli.output import as_json
from orchestrator.errors import OrchestratorError
from orchestrator.settings import load_settings

if TYPE_CHECKING:
    from orchestrator.kg.embedded import QueryResult


def print_table(result: QueryResult) -> None:
    columns = result.variables
    if not columns:
        click.echo(f"{len(result.rows)} row(s)")
        return
    widths = {
        name: max([len(name), *(len(row.get(name, "")) for row in result.rows)]) for name in columns
    }
    click.echo("  ".join(f"{name:<{widths[name]}}" for name in columns).rstrip())
    for row in result.rows:
        click.echo("  ".join(f"{row.get(name, ''):<{widths[name]}}" for name in columns).rstrip())
    click.echo(f"({len(result.rows)} row(s))", err=True)


@click.group()
def kg() -> None:
    """The knowledge graph: what ran and what it produced (W3C PROV-O)."""


@kg.command()
@click.argument("sparql")
@click.option("--json", "as_json_output", is_flag=True, help="Rows as a JSON array.")
def query(sparql: str, as_json_output: bool) -> None:
    """Run a SPARQL query on the embedded knowledge graph (SPARQL '-' reads stdin).

    Every registered item is in its own named graph; the query sees them all as the
    default graph, and knows the prefixes prov:, xsd:, schema: and wf: (our terms).
    For example, the outputs of step `simulate`:

    \b
      orchestrator kg query 'SELECT ?url WHERE {
        ?out prov:wasGeneratedBy ?task ; schema:contentUrl ?url .
        ?task wf:step "simulate" }'
    """
    # imported here: pyoxigraph and httpx would slow every other command's start
    from orchestrator.kg.embedded import EmbeddedKnowledgeGraph
    from orchestrator.kg.errors import QueryError
    from orchestrator.kg.settings import embedded_path

    if sparql == "-":
        sparql = sys.stdin.read()
    try:
        settings = load_settings()
        # `kg` joins the service's settings later; until then the default folder is used
        path = embedded_path(getattr(settings, "kg", None), settings.data_dir)
        result = EmbeddedKnowledgeGraph(path).execute(sparql)
    except QueryError as exc:
        click.echo(f"invalid SPARQL query: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    except OrchestratorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    if isinstance(result, bool):
        click.echo(as_json(result) if as_json_output else str(result).lower())
    elif as_json_output:
        click.echo(as_json(result.rows))
    else:
        print_table(result)
