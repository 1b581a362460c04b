"""Log levels for the CLI's long-running commands: Dask's chatter kept to errors."""

from __future__ import annotations

import logging
import warnings


def quiet_dask() -> None:
    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "bokeh"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Port .* is already in use")
