"""The cluster configurations we render, checked by AWS ParallelCluster's own schema
(`pcluster.schemas.cluster_schema.ClusterSchema`, the one `pcluster create-cluster`
validates with before it calls AWS). The package lives in a virtual environment of its own
(its pins clash with ours): the test command makes `.venv-pcluster` and names its Python in
ORCHESTRATOR_TEST_PCLUSTER_PYTHON; with CI=true it must be there."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cluster.provisioner import ProvisionerSettings, render_config, to_yaml

SETTINGS = ProvisionerSettings(region="eu-north-1", service_cidr="10.20.0.0/16")

CHECK = """
import json, sys, yaml
from marshmallow import ValidationError
from pcluster.schemas.cluster_schema import ClusterSchema
found = {}
for path in sys.argv[1:]:
    try:
        ClusterSchema(cluster_name="check").load(yaml.safe_load(open(path)))
        found[path] = "ok"
    except ValidationError as exc:
        found[path] = exc.messages
print(json.dumps(found, default=str))
"""


@pytest.fixture(scope="module")
def pcluster_python() -> str:
    python = os.environ.get("ORCHESTRATOR_TEST_PCLUSTER_PYTHON")
    if not python or not Path(python).exists():
        reason = "no aws-parallelcluster: run the test command (deploy/dev/test), which makes it"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires it: {reason}")
        pytest.skip(reason)
    return python


def check(python: str, configs: dict[str, dict], tmp_path: Path) -> dict[str, object]:
    paths = []
    for name, config in configs.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(to_yaml(config))
        paths.append(str(path))
    env = {**os.environ, "AWS_DEFAULT_REGION": SETTINGS.region}
    done = subprocess.run(
        [python, "-c", CHECK, *paths], capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {Path(k).stem: v for k, v in found.items()}


def test_every_tier_passes_parallelclusters_own_schema(pcluster_python: str, tmp_path: Path):
    configs = {
        f"{tier}-{'no-lustre' if no_lustre else 'lustre'}": render_config(
            SETTINGS,
            "lab/p1",
            tier,
            subnet_id="subnet-0123456789abcdef0",
            key_name="orchestrator-lab-p1",
            host_key_policy_arn="arn:aws:iam::123456789012:policy/orchestrator-host-key-lab-p1",
            no_lustre=no_lustre,
        )
        for tier in sorted(SETTINGS.tiers)
        for no_lustre in (False, True)
    }
    found = check(pcluster_python, configs, tmp_path)
    assert found == {name: "ok" for name in configs}


def test_the_schema_check_can_fail(pcluster_python: str, tmp_path: Path):
    config = render_config(SETTINGS, "lab/p1", "small", subnet_id="subnet-0123456789abcdef0")
    config["HeadNode"]["InstanceTyp"] = config["HeadNode"].pop("InstanceType")  # a typo
    found = check(pcluster_python, {"typo": config}, tmp_path)
    assert "InstanceTyp" in json.dumps(found["typo"])
