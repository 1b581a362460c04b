"""The Bokeh document of the Campaigns page: a summary per campaign (state, progress,
throughput, latest failures), a progress bar per campaign and step stacked by task state, and
the same numbers in a table. Refreshed by a periodic callback that reads the store in a thread,
so the scheduler's event loop (which serves the dashboard) never waits for its data."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from bokeh.document import Document
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, NumeralTickFormatter, Range1d
from bokeh.models.widgets import DataTable, Div, TableColumn
from bokeh.plotting import figure

from orchestrator.dashboard.overview import (
    CampaignOverview,
    Snapshot,
    SnapshotSource,
    counts_text,
)

logger = logging.getLogger(__name__)

# left to right in a bar: what is over, then what is under way, then what waits
BAR_STATES = ["succeeded", "failed", "cancelled", "running", "queued", "pending"]
COLORS = {
    "succeeded": "#2ca02c",
    "failed": "#d62728",
    "cancelled": "#8c8c8c",
    "running": "#1f77b4",
    "queued": "#9ecae1",
    "pending": "#e6e6e6",
}
ROW_HEIGHT = 30
STYLE = """<style>
.campaigns { font-family: sans-serif; font-size: 14px; }
.campaign { margin: 0 0 10px 0; }
.campaign .name { font-weight: bold; font-size: 15px; }
.campaign .state { padding: 1px 6px; border-radius: 3px; color: white; }
.state-accepted { background: #9ecae1; } .state-running { background: #1f77b4; }
.state-succeeded { background: #2ca02c; } .state-failed { background: #d62728; }
.state-cancelled { background: #8c8c8c; }
.campaign pre { margin: 2px 0 2px 16px; color: #a00; white-space: pre-wrap; }
.muted { color: #666; }
</style>"""


def campaigns_doc(
    feed: SnapshotSource, project: str | None, interval_ms: int
) -> Callable[[Any, dict[str, Any], Document], None]:
    """A page factory as `distributed.dashboard.scheduler.applications` takes them:
    called with the scheduler, the dashboard's template variables and a new document."""

    def make(scheduler: Any, extra: dict[str, Any], doc: Document) -> None:
        page = CampaignsPage(feed, project or _project_argument(doc))
        doc.title = "Dask: Campaigns"
        doc.add_root(page.root)
        _use_dask_template(doc, extra)

        async def refresh() -> None:
            if page.reading:  # a slow store: no pile-up of reads behind it
                return
            page.reading = True
            try:
                loop = asyncio.get_running_loop()
                snap = await loop.run_in_executor(None, feed.snapshot, page.project)
            finally:
                page.reading = False
            page.show(snap)

        # Bokeh awaits a coroutine callback (with the document locked); its stubs say None
        callback = cast(Callable[[], None], refresh)
        doc.add_next_tick_callback(callback)
        doc.add_periodic_callback(callback, interval_ms)

    return make


class CampaignsPage:
    def __init__(self, feed: SnapshotSource, project: str | None):
        self.project = project
        self.reading = False
        self.summary = Div(text=_header(project, None), sizing_mode="stretch_width")
        self.bars_source = ColumnDataSource(_bars_data([]))
        self.rows = FactorRange(factors=[])
        self.bars = figure(
            y_range=self.rows,
            x_range=Range1d(start=0, end=1),
            height=120,
            sizing_mode="stretch_width",
            title="Tasks by state, per campaign and step",
            toolbar_location=None,
            tools="",
            visible=False,
        )
        self.bars.hbar_stack(
            BAR_STATES,
            y="row",
            height=0.7,
            source=self.bars_source,
            color=[COLORS[s] for s in BAR_STATES],
            legend_label=BAR_STATES,
        )
        self.bars.xaxis.formatter = NumeralTickFormatter(format="0%")
        self.bars.ygrid.grid_line_color = None
        self.bars.legend.orientation = "horizontal"
        self.bars.legend.location = "top_left"
        self.bars.add_layout(self.bars.legend[0], "above")
        self.bars.add_tools(
            HoverTool(tooltips=[("", "@label"), ("", "@text")], point_policy="follow_mouse")
        )
        self.table_source = ColumnDataSource(_table_data([]))
        self.table = DataTable(
            source=self.table_source,
            columns=[
                TableColumn(field="campaign", title="campaign", width=240),
                TableColumn(field="state", title="state", width=90),
                TableColumn(field="step", title="step", width=140),
                TableColumn(field="progress", title="progress", width=120),
                *(TableColumn(field=s, title=s, width=80) for s in BAR_STATES),
                TableColumn(field="total", title="total", width=80),
            ],
            index_position=None,
            sizing_mode="stretch_width",
            height=100,
            visible=False,
        )
        self.root = column(self.summary, self.bars, self.table, sizing_mode="stretch_width")

    def show(self, snap: Snapshot) -> None:
        campaigns = snap.campaigns
        parts = [_header(snap.project, snap.time)]
        if snap.error:
            parts.append(f'<p class="muted">{html.escape(snap.error)}</p>')
        elif not campaigns:
            parts.append('<p class="muted">No campaigns yet.</p>')
        parts += [_campaign_html(c) for c in campaigns]
        self.summary.text = STYLE + '<div class="campaigns">' + "".join(parts) + "</div>"

        bars = _bars_data(campaigns)
        self.rows.factors = list(reversed(bars["row"]))  # newest campaign on top
        self.bars_source.data = bars
        self.bars.height = 110 + ROW_HEIGHT * len(bars["row"])
        self.bars.visible = bool(campaigns)
        self.table_source.data = _table_data(campaigns)
        self.table.height = 30 + 25 * len(bars["row"])
        self.table.visible = bool(campaigns)


def label(c: CampaignOverview) -> str:
    return f"{c.name} ({c.id[-6:]})"


def _header(project: str | None, when: float | None) -> str:
    scope = f"project {html.escape(project)}" if project else "all projects"
    updated = datetime.fromtimestamp(when).strftime("%H:%M:%S") if when else "…"
    return f'<h2>Campaigns</h2><p class="muted">{scope} · updated {updated}</p>'


def _campaign_html(c: CampaignOverview) -> str:
    rate = f"{c.throughput:.1f} tasks/s over the last minute"
    failed = f" · <b>{c.counts['failed']} failed</b>" if c.counts["failed"] else ""
    lines = [
        f'<div class="campaign" id="campaign-{html.escape(c.id)}">'
        f'<span class="name">{html.escape(c.name)}</span> <code>{html.escape(c.id)}</code> '
        f'<span class="state state-{html.escape(c.state)}">{html.escape(c.state)}</span> '
        f"{html.escape(counts_text(c.counts, c.total))} · {rate}{failed}"
    ]
    if c.message:
        lines.append(f'<div class="muted">{html.escape(c.message)}</div>')
    for f in c.failures:
        lines.append(
            f"<pre>{html.escape(f.task)} (attempt {f.attempt}):\n{html.escape(f.error)}</pre>"
        )
    return "".join(lines) + "</div>"


def _bars_data(campaigns: list[CampaignOverview]) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = {"row": [], "label": [], "text": []}
    data.update({s: [] for s in BAR_STATES})
    for c in campaigns:
        for step in c.steps:
            data["row"].append(f"{label(c)} · {step.step}")
            data["label"].append(f"{c.name} {c.id} · {step.step}")
            data["text"].append(counts_text(step.counts, step.total))
            for s in BAR_STATES:
                data[s].append(step.counts[s] / step.total if step.total else 0.0)
    return data


def _table_data(campaigns: list[CampaignOverview]) -> dict[str, list[Any]]:
    columns = ["campaign", "state", "step", "progress", *BAR_STATES, "total"]
    data: dict[str, list[Any]] = {k: [] for k in columns}
    for c in campaigns:
        for step in c.steps:
            data["campaign"].append(label(c))
            data["state"].append(c.state)
            data["step"].append(step.step)
            percent = 100.0 * step.done / step.total if step.total else 100.0
            data["progress"].append(f"{step.done}/{step.total} ({percent:.0f}%)")
            for s in BAR_STATES:
                data[s].append(step.counts[s])
            data["total"].append(step.total)
    return data


def _project_argument(doc: Document) -> str | None:
    """`?project=vlab/project` on the page's URL (when the page was registered for every
    project, e.g. one `serve` running them all on a laptop)."""
    request = getattr(doc.session_context, "request", None)
    arguments = getattr(request, "arguments", None) or {}
    values = arguments.get("project") or []
    value = values[0].decode() if values and isinstance(values[0], bytes) else None
    return value if value and value.count("/") == 1 else None


def _use_dask_template(doc: Document, extra: dict[str, Any]) -> None:
    """The dashboard's own page template (its navigation bar), with this page added."""
    try:
        from distributed.dashboard.components.scheduler import BOKEH_THEME, env
    except Exception:  # an older or newer Dask without them: a plain page still works
        logger.debug("Dask's dashboard template not found", exc_info=True)
        return
    doc.template = env.get_template("simple.html")
    pages = [p for p in extra.get("pages", []) if p != "campaigns"] + ["campaigns"]
    doc.template_variables.update({**extra, "pages": pages})
    doc.theme = BOKEH_THEME
