"""The one allow-list of environment variables that reach the processes running task code:
the Dask scheduler and workers started by the service, SLURM worker jobs, and `command` steps.

The service's own environment holds secrets (the database URL, tokens, AWS credentials, the
SSH key's passphrase); none of it is inherited. A child gets only the names below, the names a
site adds (`cluster.worker_env`, e.g. `LD_LIBRARY_PATH` or a module system's variables), and
the values its starter sets explicitly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

ALLOWED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    # where a results location on S3 is and how it is reached; never a credential (on the
    # cluster, tasks use the node's instance role)
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
ALLOWED_PREFIXES = ("LC_", "SLURM_")
EXTRA_NAMES_VARIABLE = "WORKFLOW_TASK_ENV_NAMES"
"""Set in a worker's environment: the extra names a site allowed, so that the worker's
`command` steps get them too."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\*?$")


def check_names(names: Iterable[str]) -> list[str]:
    """Names a site adds (`NAME`, or `PREFIX*`); a malformed one is a ValueError naming it."""
    names = list(names)
    for name in names:
        if not _NAME.match(name):
            raise ValueError(
                f"{name!r} is not an environment variable name (letters, digits, '_'; "
                "a trailing '*' allows every name with that prefix)"
            )
    return names


def allowed(name: str, extra: Iterable[str] = ()) -> bool:
    if name in ALLOWED or name.startswith(ALLOWED_PREFIXES):
        return True
    return any(name.startswith(e[:-1]) if e.endswith("*") else name == e for e in extra)


def allowed_environment(
    extra: Iterable[str] = (),
    values: Mapping[str, str] | None = None,
    *,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allow-listed part of `source` (this process's environment), plus `values`."""
    extra = list(extra)
    source = os.environ if source is None else source
    env = {name: value for name, value in source.items() if allowed(name, extra)}
    if extra:
        env[EXTRA_NAMES_VARIABLE] = ",".join(extra)
    env.update(values or {})
    return env


def task_environment(**values: str) -> dict[str, str]:
    """The environment of a task process started on a worker: the worker's own allow-listed
    environment (with the names its site added), plus `values`."""
    extra = [n for n in os.environ.get(EXTRA_NAMES_VARIABLE, "").split(",") if n]
    return allowed_environment(extra, values)


def shell_filter(extra: Iterable[str] = ()) -> str:
    """A bash line that unsets every variable the allow-list does not name (for job scripts,
    after the site's prologue)."""
    patterns = [*ALLOWED, *(f"{p}*" for p in ALLOWED_PREFIXES), EXTRA_NAMES_VARIABLE, *extra]
    keep = "|".join(patterns)
    return (
        'for _orch_var in $(compgen -e); do case "$_orch_var" in '
        f'{keep}) ;; *) unset "$_orch_var" ;; esac; done; unset _orch_var'
    )
