"""Syntax of the values a campaign spec hands to other programs.

Names placed in `#SBATCH` lines (partition, account, constraint) and in the job's prologue
(`module load NAME`) follow SLURM's (and Lmod's) own syntax, so no value can end a line and
start another: a newline, a space or a shell metacharacter is refused, never escaped.
Every check is a whole-string match (`re.fullmatch`), so a trailing newline is refused too.
"""

from __future__ import annotations

import re

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
