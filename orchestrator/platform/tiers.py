"""Which of the provisioner's tiers a project's cluster is created with.

A campaign that names SLURM partitions (its batch steps' `partition`) needs a tier with a
queue of each name: the first such tier, in the provisioner's order, is taken. Otherwise
the project's own tier (`platform.project_tiers`), else `platform.default_tier`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cluster.provisioner import TierSpec
from orchestrator.platform.errors import NoTier


def partitions(spec: Mapping[str, Any]) -> set[str]:
    """The partitions a stored spec document names."""
    found = set()
    for step in (spec.get("steps") or {}).values():
        batch = step.get("batch") if isinstance(step, dict) else None
        if isinstance(batch, dict) and batch.get("partition"):
            found.add(str(batch["partition"]))
    return found


def choose_tier(
    specs: Iterable[Mapping[str, Any]],
    tiers: Mapping[str, TierSpec],
    project_tier: str,
) -> str:
    """The tier for campaigns `specs` of a project whose own tier is `project_tier`."""
    wanted = set().union(*(partitions(spec) for spec in specs))
    if not wanted:
        return project_tier
    for name in [project_tier, *tiers]:
        tier = tiers.get(name)
        if tier is not None and wanted <= {queue.name for queue in tier.queues}:
            return name
    raise NoTier(
        f"no tier has the partition(s) {', '.join(sorted(wanted))} "
        f"(tiers: {', '.join(f'{n}: {[q.name for q in t.queues]}' for n, t in tiers.items())})"
    )
