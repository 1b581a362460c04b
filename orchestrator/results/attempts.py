"""One task folder per attempt: what an earlier attempt left is set aside before the next runs.

A task's output folder (`ctx.output_dir`, `{{ output_dir }}` of a batch step) holds only
what its current attempt writes: when an attempt starts and the folder is not empty (an
earlier attempt failed, or ran on a worker that was lost), its content moves to the sibling
folder `<folder>.before-attempt-<n>`, kept for reading but never part of the task's outputs,
so the manifest and the provenance of the attempt that succeeds list only its own files.
"""

from __future__ import annotations

import os
import shlex
import uuid
from pathlib import Path

SET_ASIDE = ".before-attempt-"


def set_aside_name(folder: str, attempt: int) -> str:
    return f"{folder.rstrip('/')}{SET_ASIDE}{attempt}"


def fresh_task_folder(folder: Path, attempt: int) -> Path:
    """`folder`, empty, for attempt `attempt` (created if missing)."""
    if folder.is_dir() and any(folder.iterdir()):
        target = Path(set_aside_name(str(folder), attempt))
        if target.exists():  # the same attempt started twice: keep both
            target = target.with_name(f"{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(folder, target)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fresh_task_folder_shell(folder: str, attempt: int) -> list[str]:
    """The same, as lines of a bash script (batch steps: run on the cluster's node)."""
    quoted, aside = shlex.quote(folder), shlex.quote(set_aside_name(folder, attempt))
    return [
        f'if [ -d {quoted} ] && [ -n "$(ls -A {quoted})" ]; then',
        f"  mv -T {quoted} {aside} 2>/dev/null || mv -T {quoted} {aside}-$$ || exit 1",
        "fi",
        f"mkdir -p {quoted} || exit 1",
    ]
