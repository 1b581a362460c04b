"""The tier a project's cluster is created with: the partitions its campaigns name, else the
project's own tier; a partition no tier has is a clear error."""

from __future__ import annotations

import pytest

from cluster.provisioner import ProvisionerSettings
from orchestrator.platform.errors import NoTier
from orchestrator.platform.tiers import choose_tier

TIERS = ProvisionerSettings().tiers  # small: debug, prod-batch; large: + prod-mpi, prod-spot


def spec(partition: str | None = None) -> dict[str, object]:
    batch: dict[str, object] = {"script": "true"}
    if partition:
        batch["partition"] = partition
    return {"name": "t", "steps": {"sim": {"batch": batch}, "f": {"run": "m:f"}}}


def test_without_partitions_the_projects_own_tier() -> None:
    assert choose_tier([spec()], TIERS, "small") == "small"
    assert choose_tier([spec()], TIERS, "large") == "large"


def test_the_first_tier_with_every_named_partition() -> None:
    assert choose_tier([spec("debug")], TIERS, "small") == "small"
    assert choose_tier([spec("prod-mpi")], TIERS, "small") == "large"
    assert choose_tier([spec("debug"), spec("prod-spot")], TIERS, "small") == "large"
    assert choose_tier([spec("prod-batch")], TIERS, "large") == "large"  # its own covers it


def test_a_partition_no_tier_has() -> None:
    with pytest.raises(NoTier, match="no tier has the partition"):
        choose_tier([spec("gpu")], TIERS, "small")
