"""Small provenance records for the knowledge-graph tests: a campaign, its task attempts
and the files they wrote, as the engine would register them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.kg import CampaignProvenance, OutputEntity, TaskActivity, TaskRef

PROJECT = "lab/p1"
CAMPAIGN = "c-0001"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SPEC = {
    "name": "fi-curve",
    "parameters": {"amplitude": [0.0, 0.1, 0.2]},
    "steps": {"simulate": {"run": "m:simulate", "foreach": True}},
}


def campaign(
    state: str | None = "running", ended_at: datetime | None = None, user: str = "alice"
) -> CampaignProvenance:
    return CampaignProvenance(
        PROJECT, CAMPAIGN, "fi-curve", SPEC, user, T0, state=state, ended_at=ended_at
    )


def task(
    step: str = "simulate",
    point: int | None = 1,
    attempt: int = 0,
    amplitude: float = 0.1,
    state: str = "succeeded",
    used: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    slurm_job_id: str | None = "4242",
    parameters: Mapping[str, Any] | None = None,
    ended_at: datetime | None = T0 + timedelta(seconds=20),
) -> TaskActivity:
    return TaskActivity(
        ref=TaskRef(PROJECT, CAMPAIGN, step, point, attempt),
        parameters={"amplitude": amplitude, "seed": 7} if parameters is None else parameters,
        state=state,
        started_at=T0 + timedelta(seconds=10),
        ended_at=ended_at,
        slurm_job_id=slurm_job_id,
        used=used,
        outputs=outputs,
    )


def output(
    activity: TaskActivity,
    relpath: str = "trace.npz",
    generated_at: datetime | None = T0 + timedelta(seconds=20),
) -> OutputEntity:
    ref = activity.ref
    return OutputEntity(
        generated_by=ref,
        relpath=relpath,
        location=f"s3://results/{CAMPAIGN}/{ref.step}/{ref.point}/{relpath}",
        size=1024,
        digest="sha256:" + "ab" * 32,
        media_type="application/octet-stream",
        generated_at=generated_at,
    )


def sweep() -> list[CampaignProvenance | TaskActivity | OutputEntity]:
    """A campaign; `simulate` over three amplitudes; `features` given each point's trace
    (it `prov:used` the outputs collection of the same point's `simulate`)."""
    items: list[CampaignProvenance | TaskActivity | OutputEntity] = [campaign()]
    for point, amplitude in enumerate([0.0, 0.1, 0.2]):
        simulate = task("simulate", point, amplitude=amplitude, outputs=("trace.npz",))
        used = (simulate.ref.outputs_iri,)
        features = task(
            "features", point, amplitude=amplitude, used=used, outputs=("features.json",)
        )
        items += [simulate, output(simulate), features, output(features, "features.json")]
    return items
