"""Limits that keep the service alive: each a SpecError naming the limit, never a hang, a
RecursionError or a MemoryError."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.errors import SpecError
from orchestrator.runner import Runner
from orchestrator.service import Service
from orchestrator.spec import load_text, parse_document, topological_order
from orchestrator.spec.model import MAX_STEPS, CampaignSpec

ALIAS_BOMB = "\n".join(
    [
        "name: bomb",
        "steps: {s: {command: 'true'}}",
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=False)
        ),
    ]
)


def chain(n: int) -> dict[str, Any]:
    steps = {
        f"s{i}": {"command": "true", **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(n)
    }
    return {"name": "chain", "steps": steps}


def gather(points: int) -> dict[str, Any]:
    return {
        "name": "fan-in",
        "parameters": {"x": {"range": [0, points]}},
        "steps": {
            "each": {"command": "echo {{ x }}", "foreach": True},
            "all": {"command": "true", "needs": ["each"]},
        },
    }


def test_a_yaml_alias_bomb_is_refused_quickly() -> None:
    assert len(ALIAS_BOMB) < 700
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_text(ALIAS_BOMB)
    assert time.monotonic() - started < 2
    assert info.value.issues[0].path == ""
    assert "expands to more than 1,000,000 values" in info.value.issues[0].message


def test_a_self_referencing_alias_is_refused() -> None:
    with pytest.raises(SpecError, match="contains it"):
        load_text("name: t\nsteps: {s: {command: 'true'}}\nx: &x [1, *x]\n")


def test_aliases_within_the_bound_are_fine() -> None:
    text = "name: t\nsteps:\n  a: &step {command: 'true'}\n  b: *step\n"
    assert set(load_text(text).steps) == {"a", "b"}


def test_a_chain_of_1500_steps_is_refused_naming_the_limit() -> None:
    with pytest.raises(SpecError) as info:
        parse_document(chain(1500))
    assert [i.path for i in info.value.issues] == ["steps"]
    assert f"more than a campaign may have ({MAX_STEPS})" in info.value.issues[0].message


def test_a_chain_at_the_limit_is_checked_without_recursion_and_fast() -> None:
    started = time.monotonic()
    spec = parse_document(chain(MAX_STEPS))
    assert topological_order(spec) == [f"s{i}" for i in range(MAX_STEPS)]
    assert time.monotonic() - started < 2


def test_a_long_cycle_is_found_without_recursion() -> None:
    document = chain(MAX_STEPS)
    document["steps"]["s0"]["needs"] = [f"s{MAX_STEPS - 1}"]
    with pytest.raises(SpecError) as info:
        parse_document(document)
    assert info.value.issues[0].path == "steps.s0.needs"
    assert "cycle" in info.value.issues[0].message


def test_topological_order_of_a_model_with_a_cycle_names_it() -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "t",
            "steps": {"a": {"command": "x", "needs": ["b"]}, "b": {"command": "x", "needs": ["a"]}},
        }
    )
    with pytest.raises(SpecError, match="cycle among"):
        topological_order(spec)


def test_a_fan_in_over_too_many_points_is_refused_at_submit(service: Service) -> None:
    spec = parse_document(gather(10**12))  # the spec itself is fine: the setting decides
    with pytest.raises(SpecError) as info:
        service.submit(spec)
    assert [i.path for i in info.value.issues] == ["steps.all.needs"]
    assert "more than the limit of 1000000 (setting engine.max_gathered_points)" in str(info.value)
    assert service.list_campaigns() == []
    service.submit(parse_document(gather(1000)))  # below the limit


def test_a_stored_fan_in_over_the_limit_fails_its_campaign_with_the_reason(
    service: Service,
) -> None:
    spec = parse_document(gather(10**12))
    campaign_id = service.store.create_campaign(
        spec=spec.to_document(),
        name=spec.name,
        points=10**12,
        results_url="memory://x",
        project="local/default",
    )
    compute = SimpleNamespace(client=None, batch=None, kind="local")
    state = service.engine(campaign_id, compute).run()  # type: ignore[arg-type]
    assert state == "failed"
    record = service.campaign(campaign_id)
    assert record.state == "failed"
    assert "max_gathered_points" in (record.message or "")


def test_a_memory_error_fails_the_campaign_instead_of_retrying(service: Service) -> None:
    campaign_id = service.submit(parse_document(gather(3)))

    class Exhausted:
        def __init__(self) -> None:
            self.campaign_id = campaign_id

        def run(self) -> str:
            raise MemoryError("cannot hold the plan")

    runner = Runner(service, lambda project: None)  # type: ignore[arg-type,return-value]
    runner._run(Exhausted())  # type: ignore[arg-type]
    record = service.campaign(campaign_id)
    assert record.state == "failed"
    assert "MemoryError: cannot hold the plan" in (record.message or "")
    assert campaign_id not in runner._retry_at
