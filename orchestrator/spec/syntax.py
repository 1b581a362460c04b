"""Syntax of the values a campaign spec hands to other programs.

Names placed in `#SBATCH` lines (partition, account, constraint) and in the job's prologue
(`module load NAME`) follow SLURM's (and Lmod's) own syntax, so no value can end a line and
start another: a newline, a space or a shell metacharacter is refused, never escaped.
Every check is a whole-string match (`re.fullmatch`), so a trailing newline is refused too.

Numbers anywhere in a spec are finite and fit a float (`non_finite`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.errors import SpecIssue

_SLURM_NAME = r"[A-Za-z0-9_.-]+"
PARTITION = re.compile(rf"{_SLURM_NAME}(,{_SLURM_NAME})*")
"""One partition, or several separated by commas (SLURM tries them in turn)."""
ACCOUNT = re.compile(_SLURM_NAME)
CONSTRAINT = re.compile(r"[A-Za-z0-9_.&|\[\]*()-]+")
"""Node features joined by `&` (and), `|` (or), `[a|b]` (matching or), `name*N` (counts)."""
MODULE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+/@:-]*")
"""An environment module: `neuron`, `py-numpy/1.24.0`, `neuron@8.2.4`."""
MAX_NAME_LENGTH = 200

_WHAT = {
    "partition": "a SLURM partition name (letters, digits, '_', '-', '.'; several joined by ',')",
    "account": "a SLURM account name (letters, digits, '_', '-', '.')",
    "constraint": "a SLURM constraint (features of letters, digits, '_', '-', '.' joined by "
    "'&', '|', '[…]', '(…)', 'name*N')",
    "module": "a module name (letters, digits and '_', '.', '+', '/', '@', ':', '-')",
}


def check_name(kind: str, pattern: re.Pattern[str], value: str) -> str:
    """`value` if it matches `pattern` whole and is at most MAX_NAME_LENGTH characters;
    ValueError (saying what `kind` accepts) otherwise."""
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
    if not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not {_WHAT[kind]}")
    return value


def non_finite(document: Any) -> list[SpecIssue]:
    """Every number in a document that is not finite (.inf, .nan) or too large for a float,
    by its dotted path: JSON cannot carry them, so a spec cannot either. Iterative, so a
    deeply nested document costs no recursion."""
    issues: list[SpecIssue] = []
    todo: list[tuple[str, Any]] = [("", document)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, Mapping):
            items: Iterable[tuple[Any, Any]] = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            problem = _number_problem(value)
            if problem:
                issues.append(SpecIssue(path, problem))
            continue
        todo += [(f"{path}.{key}" if path else str(key), item) for key, item in items]
    return sorted(issues, key=lambda issue: _sort_key(issue.path))


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return "is too large a number (beyond ±1.8e308)"
    return None if finite else f"{value} is not a finite number (a spec holds only finite ones)"


def _sort_key(path: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.split(".")]
