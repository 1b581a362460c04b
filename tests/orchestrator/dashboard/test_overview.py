"""The Campaigns page's numbers, from a real SQLite store written the way the engine writes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from orchestrator.dashboard import CampaignsFeed, campaigns_overview, campaigns_url
from orchestrator.dashboard.overview import counts_text, error_tail
from orchestrator.service import Service
from orchestrator.settings import load_settings
from orchestrator.store import Store, TaskWrite, WriteBatch
from orchestrator.store.tables import campaigns

T0 = 1_700_000_000.0
SPEC = {
    "name": "scan",
    "parameters": {"x": [0, 1, 2, 3, 4]},
    "steps": {
        "simulate": {"run": "tests.workloads:square", "foreach": True},
        "summary": {"run": "tests.workloads:total", "needs": ["simulate"]},
    },
}
TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\n\nValueError: x=3 is bad\n'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def service(store: Store, tmp_path: Path) -> Service:
    """Reads go through the service, as the dashboard's do."""
    return Service(load_settings(data_dir=tmp_path), store=store, reader=True)


def finished_campaign(store: Store, project: str = "lab/p1", created: float = T0) -> str:
    """5 points: 4 succeeded over 20 s, point 3 failed; the fan-in step held (pending)."""
    cid = store.create_campaign(
        spec=SPEC, name="scan", points=5, results_url="file:///tmp/r", project=project
    )
    store.apply(WriteBatch(cid, campaign_state="running"))
    batch = WriteBatch(cid, campaign_state="failed", campaign_message="1 task failed")
    for point in range(5):
        failed = point == 3
        batch.tasks["simulate", point] = TaskWrite(
            "simulate",
            point,
            "failed" if failed else "succeeded",
            attempt=2 if failed else 1,
            error=TRACEBACK if failed else None,
            started_at=T0 + 5 * point,
            finished_at=T0 + 5 * point + 1,
        )
    store.apply(batch)
    with store.engine.begin() as conn:  # the store stamps the real time: back to T0
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == cid)
            .values(created_at=created, started_at=T0, finished_at=T0 + 21)
        )
    return cid


def test_counts_failures_and_throughput_of_a_finished_campaign(
    store: Store, service: Service
) -> None:
    cid = finished_campaign(store)
    now = T0 + 30  # all 5 tasks finished 9..29 s ago: within the last minute
    [c] = campaigns_overview(service, "lab/p1", now=now)
    assert (c.id, c.name, c.state, c.points) == (cid, "scan", "failed", 5)
    assert c.message == "1 task failed"
    steps = {s.step: s for s in c.steps}
    assert steps["simulate"].total == 5
    assert steps["simulate"].counts == {
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 4,
        "failed": 1,
        "cancelled": 0,
    }
    assert steps["summary"].total == 1 and steps["summary"].counts["pending"] == 1
    assert c.total == 6 and c.done == 5 and c.counts["failed"] == 1
    [failure] = c.failures
    assert failure.task == "simulate/3" and failure.attempt == 2
    assert failure.error == 'File "x.py", line 1\nValueError: x=3 is bad'
    assert c.finished_in_window == 5
    assert c.throughput == pytest.approx(5 / 30)  # it started 30 s ago: less than a minute


def test_throughput_counts_only_the_last_minute(store: Store, service: Service) -> None:
    finished_campaign(store)
    later = T0 + 5 * 3 + 1 + 60 + 0.5  # points 0..3 finished more than a minute ago
    [c] = campaigns_overview(service, "lab/p1", now=later)
    assert c.finished_in_window == 1 and c.throughput == pytest.approx(1 / 60)
    [c] = campaigns_overview(service, "lab/p1", now=T0 + 10_000)  # long over: no query at all
    assert c.finished_in_window == 0 and c.throughput == 0.0


def test_projects_are_kept_apart_and_newest_comes_first(store: Store, service: Service) -> None:
    first = finished_campaign(store, "lab/p1", created=T0)
    second = finished_campaign(store, "lab/p1", created=T0 + 1)
    other = finished_campaign(store, "lab/p2")
    assert [c.id for c in campaigns_overview(service, "lab/p1")] == [second, first]
    assert [c.id for c in campaigns_overview(service, "lab/p2")] == [other]
    assert len(campaigns_overview(service, None)) == 3
    assert len(campaigns_overview(service, None, limit=2)) == 2


def test_feed_reads_once_per_interval_and_reports_store_errors(
    store: Store, service: Service
) -> None:
    finished_campaign(store)
    feed = CampaignsFeed(lambda: service, fresh=60.0, owns_service=False)
    first = feed.snapshot("lab/p1")
    assert feed.snapshot("lab/p1") is first  # cached
    assert feed.snapshot("lab/p2") is not first and feed.snapshot("lab/p2").campaigns == []

    def broken() -> Service:
        raise RuntimeError("database is gone")

    snap = CampaignsFeed(broken).snapshot(None)
    assert snap.campaigns == [] and snap.error and "database is gone" in snap.error


def test_texts() -> None:
    counts = {"pending": 1, "queued": 0, "running": 2, "succeeded": 3, "failed": 0, "cancelled": 0}
    assert counts_text(counts, 6) == "3/6 done (50%): 1 pending, 2 running, 3 succeeded"
    assert error_tail(None) == "(no error message)"


@pytest.mark.parametrize(
    ("link", "project", "url"),
    [
        ("http://127.0.0.1:8787/status", None, "http://127.0.0.1:8787/campaigns"),
        ("http://h:8787/status?x=1", "lab/p1", "http://h:8787/campaigns?project=lab%2Fp1"),
        ("https://hub/user/a/proxy/8787/status", None, "https://hub/user/a/proxy/8787/campaigns"),
        ("http://h:8787", None, "http://h:8787/campaigns"),
        (None, None, None),
    ],
)
def test_campaigns_url(link: str | None, project: str | None, url: str | None) -> None:
    assert campaigns_url(link, project) == url
