"""Folders and files only this user may read: the data folder and the SQLite database.

A folder made here is created with mode 0700 and a file with 0600, in the call that creates
it, so there is no moment in which it is more open (a umask can only take permissions away;
a chmod afterwards only puts back the owner's bits a strict umask took). Folders above it that
are missing are created as `mkdir -p` would, and are not narrowed: they may be shared.

A folder or file that already exists is left as it is: it may be one the operator made and
opened on purpose (a group-readable data folder), and changing its mode is not ours to do.
Whatever is created inside a private folder is out of reach of others, whatever its own mode.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def make_private_folder(folder: Path) -> bool:
    """Create `folder` with mode 0700 if it does not exist; True when it was created here."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=FOLDER_MODE)
    except FileExistsError:
        return False
    os.chmod(folder, FOLDER_MODE)
    return True


def make_private_file(path: Path) -> bool:
    """Create `path` empty with mode 0600 if it does not exist; True when it was created here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True
