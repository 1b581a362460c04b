"""`orchestrator throttle ID [--step S] N` as a real subprocess: kept with a campaign nobody
runs yet, shown in its status and events, and each refusal exits 2 naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.orchestrator.cli.test_flows import _cli


def test_throttle_a_campaign_and_what_it_refuses(tmp_path: Path):
    spec = {
        "name": "throttled",
        "parameters": {"x": {"range": [0, 4]}},
        "steps": {
            "sq": {"run": "tests.workloads:square", "foreach": True},
            "sim": {"batch": {"script": "true"}, "foreach": True, "needs": ["sq"]},
        },
        "results": str(tmp_path / "results"),
    }
    path = tmp_path / "throttled.yaml"
    path.write_text(yaml.safe_dump(spec))
    cid = _cli(tmp_path, "submit", str(path)).stdout.strip()

    done = _cli(tmp_path, "throttle", cid, "1")
    assert done.returncode == 0, done.stderr
    assert f"throttle requested for {cid}: at most 1 point(s) in flight" in done.stderr
    step = _cli(tmp_path, "throttle", cid, "--step", "sim", "3")
    assert step.returncode == 0, step.stderr
    status = json.loads(_cli(tmp_path, "status", cid, "--json").stdout)
    assert status["throttle"] == {"window": 1, "steps": {"sim": 3}}

    zero = _cli(tmp_path, "throttle", cid, "0")
    assert zero.returncode == 2 and "0 is not in the range x>=1" in zero.stderr
    unknown = _cli(tmp_path, "throttle", cid, "--step", "nope", "2")
    assert unknown.returncode == 2 and "has no step 'nope'" in unknown.stderr
    not_batch = _cli(tmp_path, "throttle", cid, "--step", "sq", "2")
    assert not_batch.returncode == 2 and "'sq' is not a batch step" in not_batch.stderr
    assert "Traceback" not in unknown.stderr + not_batch.stderr

    events = [
        json.loads(line) for line in _cli(tmp_path, "events", cid, "--json").stdout.splitlines()
    ]
    throttled = [e for e in events if e["kind"] == "throttled"]
    assert [e.get("step") for e in throttled] == [None, "sim"]

    _cli(tmp_path, "cancel", cid)  # nobody runs it: cancelled at once
    ended = _cli(tmp_path, "throttle", cid, "2")
    assert ended.returncode == 1 and "already cancelled" in ended.stderr
