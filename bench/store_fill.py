"""Fill a store with one large finished campaign, then time what reads it.

    python bench/store_fill.py                      # 1,000,000 points, SQLite in a temp dir
    python bench/store_fill.py --points 200000 --pg postgresql+psycopg://…

The campaign row and its first event go through the store (`Store.create_campaign`); its task
rows, events and knowledge-graph registrations are then written by RAW SQL matching the schema
(`insert_rows_raw`, executemany on SQLite, COPY on PostgreSQL), because a million rows through
the engine take too long to measure the readers. The schema's triggers (task counts) run as
they would for the engine's writes. Timed: the status, task pages (first, deep by cursor,
filtered by state), event pages, the Campaigns page snapshot, `orchestrator status` (the CLI,
a child process), the manifest rebuild on run start, the admission's reading of stored rows,
and the query plans of the task queries.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ORCHESTRATOR, orchestrator_env

STEP = "simulate"
ROWS_PER_BATCH = 20_000


def spec(points: int, results: str) -> dict[str, Any]:
    return {
        "name": "million",
        "parameters": {"x": {"range": [0, points]}},
        "steps": {STEP: {"run": "bench.workloads:noop", "foreach": True}},
        "results": results,
    }


def _task_rows(cid: str, points: int, failed_every: int) -> Iterator[tuple[Any, ...]]:
    base = time.time() - points / 1000
    for p in range(points):
        state = "failed" if failed_every and p % failed_every == 7 else "succeeded"
        done = base + p / 1000
        error = "ValueError: bad point" if state == "failed" else None
        yield (cid, STEP, p, state, 1, json.dumps(p), error, done - 0.002, done - 0.001, done)


def _event_rows(cid: str, points: int, per_task: int) -> Iterator[tuple[Any, ...]]:
    kinds = ("queued", "running", "succeeded")[-per_task:] if per_task else ()
    seq = 2  # 1 is the campaign's `accepted`
    base = time.time() - points / 1000
    for p in range(points):
        for state in kinds:
            yield (cid, seq, base + p / 1000, "task", STEP, p, state, 1)
            seq += 1


def _outbox_rows(cid: str, points: int) -> Iterator[tuple[Any, ...]]:
    now = time.time()
    for p in range(points):
        payload = {"step": STEP, "point": p, "attempt": 1, "state": "succeeded", "ended_at": now}
        yield (cid, "task", json.dumps(payload), now, 0, now, now)


TASK_COLUMNS = (
    "campaign_id, step, point, state, attempt, result, error, queued_at, started_at, finished_at"
)
EVENT_COLUMNS = "campaign_id, seq, time, kind, step, point, state, attempt"
OUTBOX_COLUMNS = "campaign_id, kind, payload, created_at, attempts, next_at, done_at"


def insert_rows_raw(
    store: Any, cid: str, points: int, *, events_per_task: int, failed_every: int
) -> int:
    """Raw SQL inserts of the campaign's task rows, events and (registered) outbox rows;
    returns the number of events written (the campaign's `last_event_seq` is set to match)."""
    tables = (
        ("tasks", TASK_COLUMNS, _task_rows(cid, points, failed_every)),
        ("events", EVENT_COLUMNS, _event_rows(cid, points, events_per_task)),
        ("outbox", OUTBOX_COLUMNS, _outbox_rows(cid, points)),
    )
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, columns, rows in tables:
            if store.dialect == "postgresql":
                _copy(cursor, table, columns, rows)
            else:
                marks = ", ".join("?" * len(columns.split(",")))
                sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
                while batch := [row for _, row in zip(range(ROWS_PER_BATCH), rows, strict=False)]:
                    cursor.executemany(sql, batch)
        n_events = points * events_per_task
        cursor.execute(
            f"UPDATE campaigns SET state = 'succeeded', last_event_seq = {n_events + 1} "
            f"WHERE id = '{cid}'"
        )
        raw.commit()
    finally:
        raw.close()
    return n_events


def _copy(cursor: Any, table: str, columns: str, rows: Iterator[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def fill(url: str, points: int, *, events_per_task: int = 3, failed_every: int = 0) -> str:
    """A store at `url` with one finished campaign of `points` task rows; returns its id."""
    from orchestrator.store import Store

    store = Store(url)
    store.migrate()
    results = str(Path(tempfile.mkdtemp(prefix="million-results-")))
    cid = store.create_campaign(
        spec=spec(points, results), name="million", points=points, results_url=results
    )
    insert_rows_raw(store, cid, points, events_per_task=events_per_task, failed_every=failed_every)
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    store.close()
    return cid


# ---------------------------------------------------------------------- timing
def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median seconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def plans(store: Any, cid: str) -> dict[str, str]:
    """EXPLAIN (QUERY PLAN) of the task queries a page or the status runs."""
    from sqlalchemy.dialects import postgresql, sqlite

    from orchestrator.store import _tasks

    found = {}
    dialect = postgresql.dialect() if store.dialect == "postgresql" else sqlite.dialect()
    prefix = "EXPLAIN " if store.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    for name, query in _tasks.explained(cid).items():
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(prefix + sql).all()
        found[name] = " | ".join(str(r[-1]) for r in rows)
    return found


def measure(url: str, cid: str, data_dir: Path) -> list[tuple[str, float, str]]:
    from orchestrator.dashboard.overview import campaigns_overview
    from orchestrator.engine.manifest import Manifest
    from orchestrator.engine.plan import compile_plan
    from orchestrator.results import ResultsLocation
    from orchestrator.service import Service
    from orchestrator.spec import CampaignSpec

    service = Service.reader(url)
    store = service.store
    record = store.get_campaign(cid)
    out: list[tuple[str, float, str]] = []

    def row(name: str, seconds: float, note: str = "") -> None:
        out.append((name, seconds, note))
        print(f"{name:<42} {seconds * 1000:10.1f} ms  {note}", flush=True)

    t, counts = timed(lambda: store.task_counts(cid))
    row("store.task_counts", t, json.dumps(counts))
    t, _ = timed(lambda: service.status(cid))
    row("status (service.status, GET campaign)", t)
    t, page = timed(lambda: service.tasks(cid, limit=501))
    row("tasks first page (500)", t)
    deep = (STEP, record.points - 1000)
    t, page = timed(lambda: service.tasks(cid, limit=501, after=deep))
    row("tasks deep page by cursor", t, f"{len(page)} rows")
    t, page = timed(lambda: service.tasks(cid, state="failed", limit=501))
    row("tasks state=failed first page", t, f"{len(page)} rows")
    t, page = timed(lambda: service.tasks(cid, state="succeeded", limit=501, after=deep))
    row("tasks state=succeeded deep page", t, f"{len(page)} rows")
    t, page = timed(lambda: service.events(cid, after=0, limit=1000))
    row("events first page (1000)", t)
    with store.engine.connect() as conn:
        last = conn.exec_driver_sql(
            f"SELECT last_event_seq FROM campaigns WHERE id = '{cid}'"
        ).scalar_one()
    t, page = timed(lambda: service.events(cid, after=last - 1000, limit=1000))
    row("events deep page", t, f"{len(page)} rows")
    t, _ = timed(lambda: campaigns_overview(service))
    row("dashboard Campaigns snapshot", t)
    t, _ = timed(lambda: store.max_point(cid))
    row("admission: store.max_point", t)
    t, rows = timed(
        lambda: store.tasks_in_range(cid, record.points // 2, record.points // 2 + 1000)
    )
    row("admission: tasks_in_range (1000 points)", t, f"{len(rows)} rows")
    t, _ = timed(lambda: service.recent_failures(cid, 3))
    row("dashboard: recent_failures", t)

    env = orchestrator_env(data_dir, ORCHESTRATOR_DB_URL=url)
    t, _ = timed(
        lambda: subprocess.run(
            [ORCHESTRATOR, "status", cid, "--json"], env=env, check=True, capture_output=True
        ),
        repeat=3,
    )
    row("CLI orchestrator status --json", t)

    campaign = CampaignSpec.model_validate(record.spec)
    location = ResultsLocation(record.results_url)
    manifest = Manifest(location, compile_plan(campaign, introspect=False), None, 60.0)
    Path(location.path("manifest.jsonl")).unlink(missing_ok=True)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    written = manifest.rebuild(store, cid)
    row("manifest rebuild (empty manifest)", time.perf_counter() - started, f"{written} lines")
    started = time.perf_counter()
    written = manifest.rebuild(store, cid)
    row("manifest rebuild (complete manifest)", time.perf_counter() - started, f"{written} lines")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    row("peak RSS growth over the rebuilds", 0.0, f"{grown / 1024:.0f} MiB")
    service.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--events-per-task", type=int, default=3)
    parser.add_argument("--failed-every", type=int, default=1000, help="0: no failures")
    parser.add_argument("--pg", help="a PostgreSQL URL (the campaign is deleted at the end)")
    parser.add_argument("--plans", action="store_true", help="print the query plans")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the store (SQLite: in this folder; PostgreSQL: the campaign), reuse it if there",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-fill-") as tmp:
        data_dir = args.keep or Path(tmp)
        url = args.pg or f"sqlite:///{data_dir / 'orchestrator.db'}"
        started = time.perf_counter()
        kept = args.keep and (args.pg or (data_dir / "orchestrator.db").exists())
        cid = _kept(url) if kept else None
        if cid is None:
            cid = fill(
                url,
                args.points,
                events_per_task=args.events_per_task,
                failed_every=args.failed_every,
            )
            print(f"filled {args.points} task rows in {time.perf_counter() - started:.1f} s")
        else:
            from orchestrator.store import Store

            store = Store(url)
            store.migrate()  # a kept store made by older code: its migration, timed
            store.close()
            print(f"reused {cid}; migrated in {time.perf_counter() - started:.1f} s")
        if not args.pg:
            size = sum(f.stat().st_size for f in data_dir.glob("orchestrator.db*"))
            print(f"store size: {size / 2**20:.0f} MiB")
        if args.plans:
            from orchestrator.store import Store

            store = Store(url)
            for name, plan in plans(store, cid).items():
                print(f"plan {name}: {plan}")
            store.close()
        try:
            measure(url, cid, data_dir)
        finally:
            if args.pg and not args.keep:
                _delete(args.pg, cid)
    return 0


def _kept(url: str) -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text("SELECT id FROM campaigns WHERE name = 'million'")
            return conn.execute(query).scalar()
    except DBAPIError:  # an empty database
        return None
    finally:
        engine.dispose()


def _delete(url: str, cid: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM campaigns WHERE id = :c"), {"c": cid})
    engine.dispose()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
