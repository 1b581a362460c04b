"""How the CLI prints statuses, lists and events for people (and JSON for scripts)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import click


def as_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=False)


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def print_status(status: dict[str, Any]) -> None:
    click.echo(
        f"campaign {status['id']}  {status['name']}  {status['state']}"
        f"  ({status['points']} point(s))"
    )
    if status.get("message"):
        click.echo(f"  {status['message']}")
    width = max((len(name) for name in status["steps"]), default=4)
    for name, counts in status["steps"].items():
        detail = ", ".join(f"{n} {state}" for state, n in counts.items() if state != "total" and n)
        click.echo(f"  {name:<{width}}  {counts['total']:>8} task(s): {detail or '-'}")
    click.echo(f"  results: {status['results']}")


def print_list(statuses: list[dict[str, Any]]) -> None:
    if not statuses:
        click.echo("no campaigns")
        return
    click.echo(f"{'ID':<18} {'NAME':<24} {'STATE':<10} {'POINTS':>8} {'DONE':>9}  CREATED")
    for s in statuses:
        total = sum(step["total"] for step in s["steps"].values())
        done = s["counts"]["succeeded"]
        click.echo(
            f"{s['id']:<18} {s['name'][:24]:<24} {s['state']:<10} {s['points']:>8} "
            f"{done:>4}/{total:<4}  {when(s['created_at'])}"
        )


def format_event(event: Mapping[str, Any]) -> str:
    """One line per event (an event as the backends give it: a JSON object)."""
    step, point = event.get("step"), event.get("point")
    where = "" if step is None else step if point is None else f"{step}/{point}"
    parts = [f"{event['seq']:>6}", when(event.get("time")), f"{event['kind']:<9}", f"{where:<20}"]
    if event.get("state"):
        parts.append(event["state"])
    if event.get("attempt"):
        parts.append(f"(attempt {event['attempt']})")
    if event.get("message"):
        parts.append(f"- {event['message']}")
    return " ".join(parts)
