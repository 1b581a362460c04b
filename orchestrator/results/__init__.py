"""A campaign's results location, through fsspec: a local folder, or `s3://bucket/prefix`.

Layout under the campaign's base URL:
    {step}/{point:06d}/...   one folder per task of a foreach step (files the task wrote,
    {step}/...               result.pkl / result.json for values too big for the store)
    {step}/{point:06d}.before-attempt-{n}/...
                             what earlier attempts left in the task's folder, set aside
                             when attempt n started (`attempts.py`): a task's folder holds
                             only its current attempt's files
    manifest.jsonl           one line per finished task: point, parameters, state, result,
                             outputs (local folders; `manifest/part-*.jsonl` on object stores,
                             which cannot append: one part per flush, in name order)

On an object store a task's files are uploaded from a staging folder on the worker before
the task counts as succeeded: streamed, retried on transient errors, verified (size and
SHA-256 checksum read back).
"""

from orchestrator.results.location import (
    ResultsLocation,
    StoredFile,
    campaign_results_url,
    endpoint_of,
    filesystem,
    media_type,
    open_url,
    storage_options,
)

__all__ = [
    "ResultsLocation",
    "StoredFile",
    "campaign_results_url",
    "endpoint_of",
    "filesystem",
    "media_type",
    "open_url",
    "storage_options",
]
