"""`advising report`: one self-contained HTML page of charts over the published tables, for advising
leads and analysts.

Sits after the pipeline: it reads the published tables (and the run manifests) with pyarrow, never
Spark, so it takes seconds, and writes one HTML file holding its data, its styles and the charting
library (Apache ECharts, pinned in package.json and inlined from node_modules): the page needs no
network to be viewed. `--out s3://BUCKET/KEY` puts it in the reports bucket that the edge-auth
CloudFront distribution serves to signed-in staff only (docs/report.md).

A missing or empty table gives a section that says so, never a crash.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional
from urllib.parse import urlparse

from common.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
ECHARTS_JS = REPO_ROOT / "node_modules" / "echarts" / "dist" / "echarts.min.js"
BUSIEST_ADVISORS = 30
RECENT_RUNS = 20


@dataclass
class Chart:
    """One chart of the page: an ECharts option, or the sentence saying why there is none."""

    key: str
    title: str
    note: str
    option: Optional[dict] = None
    empty: str = ""


@dataclass
class RunRecord:
    """What the header and the runs chart need from one run manifest."""

    run_id: str
    started: Optional[dt.datetime]
    mode: str
    reason: str
    stage_seconds: Dict[str, float]
    quality: str
    quarantined: int

    @property
    def seconds(self) -> float:
        return sum(self.stage_seconds.values())


@dataclass
class Report:
    tables_dir: str
    generated: dt.datetime
    facts: Dict[str, str] = field(default_factory=dict)
    last_run: Optional[RunRecord] = None
    charts: List[Chart] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- reading


def read_run_manifests(tables_dir: str) -> List[RunRecord]:
    """Every published run's manifest, oldest first.

    The one place that knows where manifests live ({output}/_runs/<run_id>/manifest.json today) and
    their shape (jobs.pipeline._manifest): when the output layout changes, only this function does."""
    runs_dir = Path(tables_dir) / "_runs"
    records = []
    for path in sorted(runs_dir.glob("*/manifest.json")) if runs_dir.is_dir() else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            summary = doc["summary"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a manifest being written or damaged: the report shows the others
        run_id = str(doc.get("run_id", path.parent.name))
        try:
            started = dt.datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            started = None
        records.append(
            RunRecord(
                run_id=run_id,
                started=started,
                mode=str(summary.get("mode", "")),
                reason=str(summary.get("reason", "")),
                stage_seconds={k: float(v) for k, v in (summary.get("stage_seconds") or {}).items()},
                quality=str(summary.get("quality", "")),
                quarantined=int(summary.get("quarantined") or 0),
            )
        )
    return sorted(records, key=lambda r: r.run_id)


def read_table(tables_dir: str, name: str, columns: List[str]):
    """The given columns of a published table as a pandas DataFrame; None when the table is missing.

    Hive partition folders (date=..., ingest_date=...) become columns; Spark's _SUCCESS and .crc
    files are skipped (pyarrow ignores names starting with _ or .)."""
    import pyarrow.dataset as ds

    path = Path(tables_dir) / name
    if not path.is_dir():
        return None
    dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    if not set(columns) <= set(dataset.schema.names):
        return None  # not the contract's table (an older layout, say): shown as missing rather than a crash
    return dataset.to_table(columns=columns).to_pandas()


def _dates(series):
    import pandas as pd

    return pd.to_datetime(series.astype(str)).dt.normalize()


def _week(dates):
    """Monday of each date's week."""
    import pandas as pd

    return dates - pd.to_timedelta(dates.dt.weekday, unit="D")


def _day_labels(dates) -> List[str]:
    return [d.strftime("%Y-%m-%d") for d in dates]


def _number(value) -> Optional[float]:
    """A JSON-safe number: NaN and None become null."""
    if value is None or value != value:
        return None
    return round(float(value), 4)


# ---------------------------------------------------------------------------------------------- charts

_PALETTE = ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc", "#2f4554"]
_AXIS_TIME = {"type": "time"}
_TOOLTIP = {"trigger": "axis"}


def _missing(name: str) -> str:
    return f"No data: the {name} table is missing under the tables folder."


def _empty(name: str) -> str:
    return f"No data: the {name} table is empty."


def _absent(frame, name: str) -> str:
    """Why a table gives no chart ("" when it has rows)."""
    if frame is None:
        return _missing(name)
    return _empty(name) if frame.empty else ""


def utilization_heatmap(load) -> Chart:
    chart = Chart(
        "utilization",
        f"Advisor utilization by week (busiest {BUSIEST_ADVISORS} advisors)",
        "Booked minutes / capacity minutes over the days each advisor had appointments (advisor_daily_load). "
        "Busiest = most booked minutes over the whole period. No cell: no capacity in advisors/*.csv.",
    )
    chart.empty = _absent(load, "advisor_daily_load")
    if chart.empty:
        return chart
    load = load.assign(week=_week(_dates(load["date"])))
    busiest = load.groupby("advisor_id")["booked_minutes"].sum().nlargest(BUSIEST_ADVISORS).index
    weekly = (
        load[load["advisor_id"].isin(busiest)]
        .groupby(["advisor_id", "week"])[["booked_minutes", "capacity_minutes"]]
        .sum(min_count=1)
        .reset_index()
    )
    weekly["utilization"] = weekly["booked_minutes"] / weekly["capacity_minutes"]
    weeks = sorted(weekly["week"].unique())
    advisors = list(reversed(list(busiest)))  # busiest at the top of the y axis
    x_index = {w: i for i, w in enumerate(weeks)}
    y_index = {a: i for i, a in enumerate(advisors)}
    cells = [
        [x_index[row.week], y_index[row.advisor_id], _number(row.utilization * 100)]
        for row in weekly.itertuples()
        if row.utilization == row.utilization
    ]
    if not cells:
        chart.empty = "No data: no advisor in advisor_daily_load has a capacity (advisors/*.csv)."
        return chart
    top = max(100.0, max(c[2] for c in cells))
    chart.option = {
        "tooltip": {"position": "top"},
        "grid": {"left": 110, "right": 30, "top": 10, "bottom": 90},
        "xAxis": {"type": "category", "data": _day_labels(weeks), "name": "week of", "splitArea": {"show": True}},
        "yAxis": {"type": "category", "data": advisors, "splitArea": {"show": True}},
        "visualMap": {
            "min": 0, "max": round(top), "calculable": True, "orient": "horizontal", "left": "center", "bottom": 0,
            "text": ["% of capacity", ""], "inRange": {"color": ["#f7fbff", "#6baed6", "#08306b"]},
        },
        "series": [{"name": "utilization %", "type": "heatmap", "data": cells, "label": {"show": False}}],
    }
    return chart


def bookings_per_department(trends) -> Chart:
    chart = Chart(
        "bookings",
        "Bookings per department per day, with the 7-day average",
        "Thin: bookings created that day; thick: bookings over the 7 days ending that day / 7 (booking_trends_daily).",
    )
    chart.empty = _absent(trends, "booking_trends_daily")
    if chart.empty:
        return chart
    trends = trends.assign(day=_dates(trends["date"])).sort_values("day")
    series = []
    for i, (department, rows) in enumerate(trends.groupby("department", dropna=False)):
        color = _PALETTE[i % len(_PALETTE)]
        name = str(department) if department == department else "(unknown)"
        days = _day_labels(rows["day"])
        series.append({
            "name": name, "type": "line", "showSymbol": False, "lineStyle": {"width": 1, "opacity": 0.35},
            "itemStyle": {"color": color}, "data": [[d, int(v)] for d, v in zip(days, rows["bookings_created"])],
        })
        series.append({
            "name": name, "type": "line", "showSymbol": False, "lineStyle": {"width": 2.5},
            "itemStyle": {"color": color}, "data": [[d, _number(v)] for d, v in zip(days, rows["bookings_7d_avg"])],
        })
    chart.option = {
        "tooltip": _TOOLTIP, "legend": {"type": "scroll", "top": 0},
        "grid": {"left": 50, "right": 20, "top": 60, "bottom": 40},
        "xAxis": _AXIS_TIME, "yAxis": {"type": "value", "name": "bookings"},
        "series": series,
    }
    return chart


def _weekly_rate_lines(frame, numerator: str, denominator: str) -> List[dict]:
    """One line per department: sum(numerator) / sum(denominator) per week, in percent (null when 0)."""
    weekly = frame.groupby(["department", "week"], dropna=False)[[numerator, denominator]].sum().reset_index()
    series = []
    for i, (department, rows) in enumerate(weekly.groupby("department", dropna=False)):
        rows = rows.sort_values("week")
        rates = [(_number(100.0 * n / d) if d else None) for n, d in zip(rows[numerator], rows[denominator])]
        series.append({
            "name": str(department) if department == department else "(unknown)", "type": "line",
            "itemStyle": {"color": _PALETTE[i % len(_PALETTE)]}, "connectNulls": False,
            "showSymbol": len(rows) <= 20,  # a marker per week reads well for a term, not for years
            "data": [[w, r] for w, r in zip(_day_labels(rows["week"]), rates)],
        })
    return series


def _rate_option(series: List[dict], name: str) -> dict:
    return {
        "tooltip": _TOOLTIP, "legend": {"type": "scroll", "top": 0},
        "grid": {"left": 50, "right": 20, "top": 60, "bottom": 40},
        "xAxis": {**_AXIS_TIME, "name": "week of"},
        "yAxis": {"type": "value", "name": name, "axisLabel": {"formatter": "{value} %"}},
        "series": series,
    }


def cancellation_rates(trends) -> Chart:
    chart = Chart(
        "cancellation",
        "Cancellation rate by department, per week",
        "Cancelled / created, over the bookings created that week (booking_trends_daily).",
    )
    chart.empty = _absent(trends, "booking_trends_daily")
    if chart.empty:
        return chart
    frame = trends.assign(week=_week(_dates(trends["date"])))
    chart.option = _rate_option(_weekly_rate_lines(frame, "cancelled_count", "bookings_created"), "cancelled")
    return chart


def no_show_rates(appointments) -> Chart:
    chart = Chart(
        "no_show",
        "No-show rate by department, per week",
        "No-shows / (completed + no-shows), by the week of the appointment (appointments).",
    )
    chart.empty = _absent(appointments, "appointments")
    if chart.empty:
        return chart
    frame = appointments.assign(
        week=_week(_dates(appointments["appointment_date"])),
        no_show=(appointments["status"] == "NO_SHOW").astype("int64"),
        attended_or_not=appointments["status"].isin(["COMPLETED", "NO_SHOW"]).astype("int64"),
    )
    chart.option = _rate_option(_weekly_rate_lines(frame, "no_show", "attended_or_not"), "no-show")
    return chart


def lead_times(appointments) -> Chart:
    chart = Chart(
        "lead_time",
        "Lead time per department: median and 90th percentile",
        "Hours from booking to the appointment's start, over every appointment in the snapshot (linear "
        "interpolation, as the contract's daily figures).",
    )
    chart.empty = _absent(appointments, "appointments")
    if chart.empty:
        return chart
    grouped = appointments.dropna(subset=["lead_time_hours"]).groupby("department", dropna=False)["lead_time_hours"]
    quantiles = grouped.quantile([0.5, 0.9]).unstack()
    departments = [str(d) if d == d else "(unknown)" for d in quantiles.index]
    chart.option = {
        "tooltip": _TOOLTIP, "legend": {"top": 0},
        "grid": {"left": 50, "right": 20, "top": 60, "bottom": 60},
        "xAxis": {"type": "category", "data": departments, "axisLabel": {"interval": 0, "rotate": 20}},
        "yAxis": {"type": "value", "name": "hours"},
        "series": [
            {"name": "median", "type": "bar", "data": [_number(v) for v in quantiles[0.5]]},
            {"name": "p90", "type": "bar", "data": [_number(v) for v in quantiles[0.9]]},
        ],
    }
    return chart


def quarantine_by_reason(quarantine) -> Chart:
    chart = Chart(
        "quarantine",
        "Quarantined lines by reason, per ingest date",
        "Rows of the quarantine table: rejected lines and invalid winning images (docs/data-contract.md lists the reasons).",
    )
    chart.empty = _absent(quarantine, "quarantine")
    if chart.empty:
        return chart
    counts = quarantine.assign(day=_dates(quarantine["ingest_date"])).groupby(["day", "reason"]).size().unstack(fill_value=0)
    days = _day_labels(counts.index)
    chart.option = {
        "tooltip": _TOOLTIP, "legend": {"type": "scroll", "top": 0},
        "grid": {"left": 50, "right": 20, "top": 60, "bottom": 40},
        "xAxis": {"type": "category", "data": days}, "yAxis": {"type": "value", "name": "lines"},
        "series": [
            {"name": str(reason), "type": "bar", "stack": "reasons", "data": [int(v) for v in counts[reason]]}
            for reason in counts.columns
        ],
    }
    return chart


def run_stage_seconds(runs: List[RunRecord]) -> Chart:
    chart = Chart(
        "runs",
        f"Seconds per stage, last {RECENT_RUNS} runs",
        "From the run manifests ({tables}/_runs/*/manifest.json); runs that published nothing write none.",
    )
    recent = runs[-RECENT_RUNS:]
    if not recent:
        chart.empty = "No data: no run manifest under the tables folder (_runs/)."
        return chart
    stages: List[str] = []
    for run in recent:
        stages += [s for s in run.stage_seconds if s not in stages]
    labels = [f"{run.run_id} ({run.mode})" for run in recent]
    chart.option = {
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}}, "legend": {"top": 0},
        "grid": {"left": 260, "right": 30, "top": 60, "bottom": 30},
        "xAxis": {"type": "value", "name": "s"}, "yAxis": {"type": "category", "data": labels},
        "series": [
            {"name": stage, "type": "bar", "stack": "seconds", "data": [_number(run.stage_seconds.get(stage, 0.0)) for run in recent]}
            for stage in stages
        ],
    }
    return chart


def header_facts(appointments) -> Dict[str, str]:
    """Date range covered, appointments, advisors, departments."""
    if appointments is None or appointments.empty:
        return {"appointments": "0 (" + _absent(appointments, "appointments") + ")"}
    days = _dates(appointments["appointment_date"])
    return {
        "date range": f"{days.min():%Y-%m-%d} to {days.max():%Y-%m-%d}",
        "appointments": f"{len(appointments):,}",
        "advisors": f"{appointments['advisor_id'].nunique():,}",
        "departments": f"{appointments['department'].nunique():,}",
    }


# ---------------------------------------------------------------------------------------------- assembly


def build_report(tables_dir: str, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> Report:
    """Read the tables and manifests under tables_dir and compute every chart."""
    if not Path(tables_dir).is_dir():
        raise UsageError(f"--tables {tables_dir} is not a folder: pass the pipeline's --output folder (local)")
    appointments = read_table(
        tables_dir, "appointments", ["advisor_id", "department", "status", "lead_time_hours", "appointment_date"]
    )
    load = read_table(tables_dir, "advisor_daily_load", ["advisor_id", "date", "booked_minutes", "capacity_minutes"])
    trends = read_table(
        tables_dir, "booking_trends_daily", ["department", "date", "bookings_created", "cancelled_count", "bookings_7d_avg"]
    )
    quarantine = read_table(tables_dir, "quarantine", ["reason", "ingest_date"])
    runs = read_run_manifests(tables_dir)
    return Report(
        tables_dir=tables_dir,
        generated=now(),
        facts=header_facts(appointments),
        last_run=runs[-1] if runs else None,
        charts=[
            utilization_heatmap(load),
            bookings_per_department(trends),
            cancellation_rates(trends),
            no_show_rates(appointments),
            lead_times(appointments),
            quarantine_by_reason(quarantine),
            run_stage_seconds(runs),
        ],
    )


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #222; }
header { background: #1f2d3d; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 8px; font-size: 20px; }
dl { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 0; }
dl div { display: flex; gap: 6px; } dt { opacity: .7; } dd { margin: 0; font-weight: 600; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; padding: 16px; }
section { background: #fff; border-radius: 6px; padding: 12px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 2px; } p.note { margin: 0 0 8px; color: #666; font-size: 12px; }
.chart { height: 360px; } .wide .chart { height: 640px; }
p.empty { padding: 40px 0; text-align: center; color: #8a5a00; background: #fff8e6; border-radius: 4px; }
footer { color: #777; font-size: 12px; padding: 0 24px 16px; }
"""

# Draws every chart from the embedded options; SVG so the page stays sharp when printed or zoomed.
_SCRIPT = """
const charts = JSON.parse(document.getElementById('report-data').textContent);
for (const [key, option] of Object.entries(charts)) {
  const el = document.getElementById('chart-' + key);
  const chart = echarts.init(el, null, {renderer: 'svg'});
  chart.setOption(Object.assign({animation: false, color: %s}, option));
  window.addEventListener('resize', () => chart.resize());
}
"""


def _last_run_facts(run: Optional[RunRecord]) -> Dict[str, str]:
    if run is None:
        return {"last run": "none recorded (no run manifest under _runs/)"}
    return {
        "last run": f"{run.started:%Y-%m-%d %H:%M} UTC" if run.started else run.run_id,
        "took": f"{run.seconds:.1f} s",
        "kind": f"{run.mode} ({run.reason})" if run.reason else run.mode,
        "quality gate": run.quality or "not recorded",
        "rows quarantined": f"{run.quarantined:,}",
    }


def render_html(report: Report, echarts_js: str) -> str:
    """The whole page as one string: styles, data, ECharts and the drawing script inline."""
    facts = {**report.facts, **_last_run_facts(report.last_run)}
    fact_items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in facts.items())
    sections = []
    for chart in report.charts:
        wide = " wide" if chart.key == "utilization" else ""
        body = (
            f'<div class="chart" id="chart-{chart.key}" data-chart="{chart.key}"></div>'
            if chart.option is not None
            else f'<p class="empty" id="chart-{chart.key}" data-chart="{chart.key}" data-empty="true">{html.escape(chart.empty)}</p>'
        )
        sections.append(
            f'<section class="{wide.strip()}"><h2>{html.escape(chart.title)}</h2>'
            f'<p class="note">{html.escape(chart.note)}</p>{body}</section>'
        )
    options = {chart.key: chart.option for chart in report.charts if chart.option is not None}
    # "</" inside a script element would end it early: JSON allows "<\\/" for the same text.
    data = json.dumps(options, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    script = _SCRIPT % json.dumps(_PALETTE)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>Advising appointments report</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<header><h1>Advising appointments</h1><dl>{fact_items}</dl></header>"
        f"<main>{''.join(sections)}</main>"
        f"<footer>Generated {report.generated:%Y-%m-%d %H:%M} UTC from {html.escape(report.tables_dir)} "
        "by <code>advising report</code>. Charts: Apache ECharts.</footer>"
        f'<script type="application/json" id="report-data">{data}</script>'
        f"<script>{echarts_js}</script><script>{script}</script>"
        "</body></html>\n"
    )


def read_echarts(path: Path = ECHARTS_JS) -> str:
    if not path.is_file():
        raise UsageError(f"{path} is missing: the report inlines ECharts from npm; run `make setup` (npm ci)")
    return path.read_text(encoding="utf-8")


def write_output(page: str, out: str) -> str:
    """Write the page to a local file or to s3://bucket/key; returns where it went."""
    if out.startswith("s3://"):
        parsed = urlparse(out)
        key = parsed.path.lstrip("/")
        if not parsed.netloc or not key or key.endswith("/"):
            raise UsageError(f"--out {out} must name an object: s3://BUCKET/reports/NAME.html")
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            boto3.client("s3").put_object(
                Bucket=parsed.netloc, Key=key, Body=page.encode("utf-8"), ContentType="text/html; charset=utf-8"
            )
        except (BotoCoreError, ClientError) as exc:
            raise UsageError(f"cannot upload the report to {out}: {str(exc).splitlines()[0]}") from None
        return out
    if "://" in out:
        raise UsageError(f"--out {out}: give a local file or an s3:// URI")
    target = Path(out)
    if target.is_dir():
        raise UsageError(f"--out {out} is a folder: give the file name, e.g. {target / 'report.html'}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, target)  # a reader never sees half a page
    return str(target)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page of charts over the published tables",
        description="Read the tables under --tables (the pipeline's --output) with pyarrow and write one HTML "
        "file with every chart inline (no network needed to view it), locally or to s3://.",
    )
    parser.add_argument("--tables", required=True, metavar="DIR", help="the published tables (the --output of `advising run`)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write, or s3://BUCKET/reports/NAME.html")
    parser.set_defaults(func=_report)


def _report(args) -> int:
    started = time.monotonic()
    echarts_js = read_echarts()
    report = build_report(args.tables)
    where = write_output(render_html(report, echarts_js), args.out)
    drawn = sum(chart.option is not None for chart in report.charts)
    print(f"report: {where} ({drawn} of {len(report.charts)} charts with data, {time.monotonic() - started:.1f} s)")
    return 0
