"""Exit codes, and known errors turned into one clear line on stderr (never a traceback)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from cluster import ClusterError
from orchestrator.client import ClientError
from orchestrator.errors import InvalidThrottle, OrchestratorError, SpecError, SpecIssue

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
F = TypeVar("F", bound=Callable[..., Any])


def _invalid_spec(issues: list[SpecIssue]) -> None:
    click.echo("invalid campaign spec:", err=True)
    for issue in issues:
        click.echo(f"  {issue}", err=True)
    sys.exit(EXIT_INVALID)


def handle_errors(func: F) -> F:
    """An invalid spec exits 2 naming each offending field (found here or by a server), as
    does an invalid throttle; any other known error exits 1 with its message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            _invalid_spec(exc.issues)
        except InvalidThrottle as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_INVALID)
        except ClientError as exc:
            if exc.status == 422 and exc.errors:  # the server found the spec invalid
                _invalid_spec(exc.issues)
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except (OrchestratorError, ClusterError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]
