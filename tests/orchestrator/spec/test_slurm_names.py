"""Values that end up in `#SBATCH` lines or in the job's prologue follow SLURM's own name
syntax: a newline there would add shell lines and directives to the job script."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.errors import UnsafeDirective
from cluster.slurm.batch import BatchJob, driver_script
from orchestrator.errors import SpecError
from orchestrator.spec import parse_document

INJECTION = "debug\necho INJECTED\n#SBATCH --array=0-999"


def batch_doc(**batch: Any) -> dict[str, Any]:
    return {"name": "b", "steps": {"sim": {"batch": {"script": "srun x", **batch}}}}


def paths(document: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_document(document)
    return [issue.path for issue in info.value.issues]


@pytest.mark.parametrize("field", ["partition", "account", "constraint"])
@pytest.mark.parametrize(
    "value", [INJECTION, "debug prod", "debug;id", "$(id)", "a`id`", "", "x" * 300, "a\rb"]
)
def test_sbatch_values_outside_slurm_syntax_are_refused(field: str, value: str) -> None:
    assert paths(batch_doc(**{field: value})) == [f"steps.sim.batch.{field}"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("partition", "prod-mpi"),
        ("partition", "debug,long"),
        ("partition", "gpu_v100.1"),
        ("account", "proj134"),
        ("account", "bbp-ou_x.1"),
        ("constraint", "cpu"),
        ("constraint", "intel&ib"),
        ("constraint", "skylake|cascadelake"),
        ("constraint", "[rack1|rack2]"),
        ("constraint", "[rack1*2&rack2*4]"),
        ("constraint", "(a|b)&c"),
    ],
)
def test_slurm_syntax_is_accepted(field: str, value: str) -> None:
    spec = parse_document(batch_doc(**{field: value}))
    assert getattr(spec.steps["sim"].batch, field) == value


@pytest.mark.parametrize("module", ["neuron\nrm -rf ~", "a b", "x;id", ""])
def test_module_names_are_refused_outside_their_syntax(module: str) -> None:
    assert paths(batch_doc(modules=[module])) == ["steps.sim.batch.modules.0"]


@pytest.mark.parametrize("module", ["neurodamus", "py-numpy/1.24.0", "neuron@8.2.4", "gcc+cuda"])
def test_module_names_are_accepted(module: str) -> None:
    assert parse_document(batch_doc(modules=[module])).steps["sim"].batch is not None


def test_env_names_are_refused_with_their_field() -> None:
    found = paths(batch_doc(env={"A\nB": "1"}))
    assert found and all(p.startswith("steps.sim.batch.env") for p in found)


@pytest.mark.parametrize(
    "job",
    [
        BatchJob(name="j", scripts=["x"], output_dirs=["/o"], options=[f"--partition={INJECTION}"]),
        BatchJob(name="j\n#SBATCH --x", scripts=["x"], output_dirs=["/o"]),
        BatchJob(name="j", scripts=["x"], output_dirs=["/o"], prologue=["module load a\nid"]),
    ],
)
def test_the_driver_script_refuses_a_value_with_a_newline(job: BatchJob) -> None:
    with pytest.raises(UnsafeDirective):
        driver_script(job, "/work/batch/j", None)


def test_the_driver_script_refuses_a_partition_setting_with_a_newline() -> None:
    job = BatchJob(name="j", scripts=["x"], output_dirs=["/o"])
    with pytest.raises(UnsafeDirective):
        driver_script(job, "/work/batch/j", INJECTION)
    with pytest.raises(UnsafeDirective):
        driver_script(job, "/work/batch\n/j", None)
