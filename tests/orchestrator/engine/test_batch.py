"""Pure parts of the engine's batch steps (SLURM job arrays): the batch part of the spec,
sbatch options, task scripts, job references. The SLURM side (parsing, the driver script) is
in tests/cluster/slurm/test_parsers.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.engine.batch import JobRef, _task_script, sbatch_options
from orchestrator.engine.execute import render_template
from orchestrator.spec import parse_document
from orchestrator.spec.model import BatchSpec, Step


def test_sbatch_options_from_the_step() -> None:
    step = Step.model_validate(
        {
            "batch": {
                "script": "srun x",
                "nodes": 2,
                "ntasks": 8,
                "partition": "prod",
                "account": "proj1",
                "constraint": "cpu",
                "exclusive": True,
            },
            "resources": {"memory": "2GiB", "walltime": "90s"},
        }
    )
    assert step.batch is not None
    options = sbatch_options(step.batch, step)
    assert options == [
        "--nodes=2",
        "--ntasks=8",
        "--partition=prod",
        "--account=proj1",
        "--constraint=cpu",
        "--exclusive",
        "--mem=2048M",
        "--time=2",
    ]


def test_task_script_renders_placeholders_and_keeps_shell_variables() -> None:
    batch = BatchSpec(
        script="srun sim --amp {{ amplitude }} --out ${SLURM_JOB_ID}", env={"A": "x y"}
    )
    body = render_template(batch.script, {"amplitude": 0.5})
    script = _task_script(batch, "/out/dir 1", body, 1)
    assert "srun sim --amp 0.5 --out ${SLURM_JOB_ID}" in script
    assert "export A='x y'" in script
    assert "cd '/out/dir 1'" in script


def test_env_names_must_be_shell_identifiers() -> None:
    with pytest.raises(ValidationError, match="env"):
        BatchSpec(script="x", env={"A; rm -rf /": "1"})


def test_job_ref_round_trip() -> None:
    ref = JobRef("orch-ab-cd", 3, "41_3")
    assert JobRef.parse(str(ref)) == ref
    intent = JobRef("orch-ab-cd", 3, None)
    assert str(intent) == "orch-ab-cd#3=" and JobRef.parse(str(intent)) == intent
    assert JobRef.parse(None) is None and JobRef.parse("tcp://worker") is None


def test_unknown_placeholder_in_a_batch_script_is_a_spec_error() -> None:
    from orchestrator.errors import SpecError

    with pytest.raises(SpecError, match=r"steps\.sim\.batch\.script.*nope"):
        parse_document(
            {
                "name": "b",
                "parameters": {"x": [1]},
                "steps": {"sim": {"batch": {"script": "echo {{ nope }}"}, "foreach": True}},
            }
        )
