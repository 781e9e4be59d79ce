"""Data-quality gate: validate the staged tables with Great Expectations before anything is published.

Place in the flow: the pipeline compacts the change log, writes every table to staging, reads them
back and calls `run_gate`. Only a report with `passed` (no failed critical expectation) lets it
publish; otherwise the published tables stay as they were and the run exits non-zero with
`GateReport.summary_line()`. `write_report` leaves quality.json (and GX data docs when they build)
next to the run manifest. The suites below are the reviewed, versioned form of docs/quality.md.

Great Expectations runs fully offline: analytics off (environment and context config), an ephemeral
in-memory context, no cloud, no version check. This module ships to EMR: Python 3.9 syntax only.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from jobs.contract import EVENT_NAMES, MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, STATUSES, TABLES

CRITICAL = "critical"
WARNING = "warning"

# Frames in validation order. The snapshot comes before quarantine because the quarantine share is
# measured against the snapshot's row count.
FRAME_ORDER = ("change_log", "snapshot", "appointments", "advisor_daily_load", "booking_trends_daily", "quarantine")

# A table that keeps less than this share of its previous publish lost input, not rows.
MIN_KEPT_SHARE = 0.5
# Where a shrink means lost input (critical); shrinking aggregates only warn (see docs/quality.md).
SHRINK_IS_CRITICAL = ("snapshot", "appointments")
# Quarantine is whole-scope, like the snapshot, so that is its yardstick (the change log of an
# incremental run holds only the new files). The sample data's deliberate mess gives about 4.5%.
MAX_QUARANTINE_SHARE = 0.10
EXAMPLES = 5

_DIGITS = "^[0-9]+$"
_SNAKE_CASE = "^[a-z][a-z0-9_]*$"


@dataclass
class ExpectationOutcome:
    """One expectation's verdict on one frame."""

    frame: str
    name: str
    severity: str
    success: bool
    details: str
    examples: List[Any] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.name} ({self.severity}): {self.details}"
        if self.examples and not self.success:
            text += " e.g. " + ", ".join(_short(value) for value in self.examples)
        return text


@dataclass
class GateReport:
    """The gate's verdict: `passed` is False as soon as one critical expectation failed."""

    passed: bool
    results: List[ExpectationOutcome]
    seconds: float
    row_counts: Dict[str, int] = field(default_factory=dict)
    # Builds GX data docs into a folder; kept in memory only (the GX context that holds the results).
    _build_docs: Optional[Callable[[str], str]] = field(default=None, repr=False, compare=False)

    def critical_failures(self) -> List[ExpectationOutcome]:
        return [r for r in self.results if not r.success and r.severity == CRITICAL]

    def warnings(self) -> List[ExpectationOutcome]:
        return [r for r in self.results if not r.success and r.severity == WARNING]

    def summary_line(self) -> str:
        failed = self.critical_failures()
        warned = self.warnings()
        if failed:
            head = "quality gate FAILED: "
            shown = failed + warned
        else:
            head = f"quality gate passed: {len(self.results)} expectations checked, {len(warned)} warning(s)"
            shown = warned
            head += ": " if shown else ""
        return (head + "; ".join(outcome.line() for outcome in shown)).replace("\n", " ")

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "seconds": round(self.seconds, 3),
            "summary": self.summary_line(),
            "row_counts": dict(self.row_counts),
            "critical_failures": [r.name for r in self.critical_failures()],
            "warnings": [r.name for r in self.warnings()],
            "results": [
                {
                    "frame": r.frame,
                    "name": r.name,
                    "severity": r.severity,
                    "success": r.success,
                    "details": r.details,
                    "examples": _json_safe(r.examples),
                }
                for r in self.results
            ],
        }


@dataclass(frozen=True)
class Check:
    """One named expectation of a suite: the GX expectation plus how to explain its verdict."""

    name: str
    severity: str
    rule: str  # what is expected, in words: shown in the report and the data docs
    expectation: Any
    # Puts a table-level observed value (a row count) into words; map checks report broken rows.
    observed: Optional[Callable[[Any], str]] = None
    # What lists offending values when the check fails: a map expectation (often the check itself),
    # _SQL_ROWS for a SQL check, or None for table-level checks. Run on failure only.
    example_source: Any = None
    # GX reports a distinct-value share of 0 for an empty frame, where uniqueness holds trivially.
    passes_when_empty: bool = False


# Marks SQL checks, whose offending rows only GX's COMPLETE result format returns.
_SQL_ROWS = "sql rows"


# ---------------------------------------------------------------------------------------------
# The suites: pure functions of the previous counts; they build GX expectation objects only.
# ---------------------------------------------------------------------------------------------


def suite_checks(frame: str, previous_counts: Optional[Mapping[str, int]], row_counts: Mapping[str, int]) -> List[Check]:
    """Every check of one frame's suite. `row_counts` holds frames already validated in this run."""
    gxe = _gx_expectations()
    checks = _SUITES[frame](gxe) if frame in _SUITES else []
    if frame in TABLES:
        schema, _ = TABLES[frame]
        required = [f.name for f in schema.fields if not f.nullable]
        checks = [_not_null(gxe, frame, column) for column in required] + checks
    previous = (previous_counts or {}).get(frame)
    # An incremental run's change log holds only new files, and a shrinking quarantine is good news.
    if previous is not None and frame not in ("change_log", "quarantine"):
        minimum = int(math.ceil(previous * MIN_KEPT_SHARE))
        checks.append(
            Check(
                f"{frame}.row_count_vs_previous",
                CRITICAL if frame in SHRINK_IS_CRITICAL else WARNING,
                f"at least {minimum} rows (half of the previous publish's {previous})",
                gxe.ExpectTableRowCountToBeBetween(min_value=minimum),
                lambda rows: f"{rows} rows vs {previous} previously ({_change(rows, previous)})",
            )
        )
    if frame == "quarantine" and "snapshot" in row_counts:
        snapshot_rows = row_counts["snapshot"]
        limit = int(math.floor(snapshot_rows * MAX_QUARANTINE_SHARE))
        checks.append(
            Check(
                "quarantine.share_of_snapshot",
                WARNING,
                f"at most {limit} rows ({MAX_QUARANTINE_SHARE:.0%} of the snapshot's {snapshot_rows} rows)",
                gxe.ExpectTableRowCountToBeBetween(max_value=limit),
                lambda rows: f"{rows} quarantined rows = {_share(rows, snapshot_rows)} of the snapshot's rows",
            )
        )
    return checks


def _map(name: str, severity: str, rule: str, expectation) -> Check:
    """A row-by-row check: GX counts offending rows, and lists a few of them on failure."""
    return Check(name, severity, rule, expectation, example_source=expectation)


def _not_null(gxe, frame: str, column: str) -> Check:
    return _map(f"{frame}.{column}_not_null", CRITICAL, f"{column} is never null", gxe.ExpectColumnValuesToNotBeNull(column=column))


def _in_set(gxe, frame: str, column: str, values) -> Check:
    return _map(
        f"{frame}.{column}_in_set",
        CRITICAL,
        f"{column} is one of {', '.join(values)}",
        gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)),
    )


def _between(gxe, frame: str, column: str, low, high=None, name: Optional[str] = None) -> Check:
    if name is None:
        name = f"{column}_non_negative" if low == 0 and high is None else f"{column}_in_range"
    rule = f"{column} >= {low}" if high is None else f"{column} between {low} and {high}"
    return _map(
        f"{frame}.{name}",
        CRITICAL,
        rule,
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
    )


def _unique(gxe, frame: str, column: str) -> Check:
    # The verdict comes from a distinct count, which joins the frame's one aggregation; GX's
    # row-by-row uniqueness check (a window over the whole frame) only runs to list duplicates.
    return Check(
        f"{frame}.{column}_unique",
        CRITICAL,
        f"one row per {column}",
        gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(column=column, min_value=1.0),
        observed=lambda share: f"{_percent(share)} of the non-null {column} values are distinct",
        example_source=gxe.ExpectColumnValuesToBeUnique(column=column),
        passes_when_empty=True,
    )


def _change_records(gxe, frame: str) -> List[Check]:
    """Checks shared by the change log and the snapshot (which is made of change records)."""
    checks = [_not_null(gxe, frame, c) for c in ("event_id", "event_name", "sequence_number", "appointment_id")]
    checks += [
        _in_set(gxe, frame, "event_name", EVENT_NAMES),
        _map(
            f"{frame}.sequence_number_digits",
            CRITICAL,
            "sequence_number is a string of decimal digits",
            gxe.ExpectColumnValuesToMatchRegex(column="sequence_number", regex=_DIGITS),
        ),
    ]
    checks += [_not_null(gxe, frame, c) for c in ("approximate_creation_time", "ingest_date", "source_file")]
    return checks


def _change_log_suite(gxe) -> List[Check]:
    from great_expectations.expectations.row_conditions import Column

    return _change_records(gxe, "change_log") + [
        _map(
            "change_log.new_image_present_unless_remove",
            WARNING,
            "INSERT and MODIFY records carry a new_image",
            gxe.ExpectColumnValuesToNotBeNull(column="new_image", row_condition=Column("event_name") != "REMOVE"),
        ),
    ]


def _snapshot_suite(gxe) -> List[Check]:
    return _change_records(gxe, "snapshot") + [_unique(gxe, "snapshot", "appointment_id")]


def _appointments_suite(gxe) -> List[Check]:
    frame = "appointments"
    return [
        _unique(gxe, frame, "appointment_id"),
        _in_set(gxe, frame, "status", STATUSES),
        _between(gxe, frame, "duration_minutes", MIN_DURATION_MINUTES, MAX_DURATION_MINUTES),
        _map(
            f"{frame}.end_after_start",
            CRITICAL,
            "end_time > start_time",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end_time", column_B="start_time"),
        ),
    ]


def _advisor_daily_load_suite(gxe) -> List[Check]:
    frame = "advisor_daily_load"
    counts = ("scheduled_count", "completed_count", "no_show_count", "cancelled_count", "booked_minutes", "distinct_students")
    return [
        _map(
            f"{frame}.date_advisor_unique",
            CRITICAL,
            "one row per (date, advisor_id)",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["date", "advisor_id"]),
        ),
        *[_between(gxe, frame, column, 0) for column in counts + ("utilization",)],
        _between(gxe, frame, "capacity_minutes", 1, name="capacity_minutes_positive"),
        _between(gxe, frame, "no_show_rate", 0, 1),
        # One query for the three cross-column rules: each SQL check costs two Spark jobs.
        Check(
            f"{frame}.counts_consistent",
            CRITICAL,
            "scheduled_count >= completed_count + no_show_count (both are active statuses), "
            "distinct_students <= scheduled_count, and scheduled_count + cancelled_count >= 1",
            gxe.UnexpectedRowsExpectation(
                unexpected_rows_query="SELECT * FROM {batch} WHERE scheduled_count < completed_count + no_show_count"
                " OR distinct_students > scheduled_count OR scheduled_count + cancelled_count < 1"
            ),
            example_source=_SQL_ROWS,
        ),
    ]


def _booking_trends_daily_suite(gxe) -> List[Check]:
    frame = "booking_trends_daily"
    return [
        _map(
            f"{frame}.date_department_unique",
            CRITICAL,
            "one row per (date, department)",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["date", "department"]),
        ),
        *[_between(gxe, frame, column, 0) for column in ("bookings_created", "cancelled_count", "bookings_7d_avg")],
        _map(
            f"{frame}.cancelled_within_bookings",
            CRITICAL,
            "cancelled_count <= bookings_created",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="bookings_created", column_B="cancelled_count", or_equal=True),
        ),
        _between(gxe, frame, "cancellation_rate", 0, 1),
        _map(
            f"{frame}.median_within_p90",
            WARNING,
            "median_lead_time_hours <= p90_lead_time_hours",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="p90_lead_time_hours",
                column_B="median_lead_time_hours",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
    ]


def _quarantine_suite(gxe) -> List[Check]:
    return [
        _map(
            "quarantine.reason_snake_case",
            WARNING,
            "reason is a snake_case code",
            gxe.ExpectColumnValuesToMatchRegex(column="reason", regex=_SNAKE_CASE),
        ),
    ]


_SUITES = {
    "change_log": _change_log_suite,
    "snapshot": _snapshot_suite,
    "appointments": _appointments_suite,
    "advisor_daily_load": _advisor_daily_load_suite,
    "booking_trends_daily": _booking_trends_daily_suite,
    "quarantine": _quarantine_suite,
}


# ---------------------------------------------------------------------------------------------
# Running the suites
# ---------------------------------------------------------------------------------------------

# Pass 1 asks GX for verdicts and counts only: with no example values requested, every column check
# of a frame folds into one Spark aggregation. Examples are fetched afterwards for failures only.
_VERDICTS = {"result_format": "BASIC", "partial_unexpected_count": 0}
_EXAMPLES = {"result_format": "BASIC", "partial_unexpected_count": EXAMPLES}
_NAME_KEY = "gate_name"
_ROW_COUNT = "row_count"


def run_gate(frames: Mapping[str, Any], previous_counts: Optional[Mapping[str, int]]) -> GateReport:
    """Validate every frame present with its suite; passed only if no critical expectation failed."""
    started = time.perf_counter()
    gx = _import_gx()
    context = _context(gx)
    source = context.data_sources.add_spark("staged", persist=False)
    outcomes: List[ExpectationOutcome] = []
    row_counts: Dict[str, int] = {}
    for frame in FRAME_ORDER:
        if frame not in frames:
            continue
        checks = suite_checks(frame, previous_counts, row_counts)
        frame_outcomes, count = _validate_frame(gx, context, source, frame, frames[frame], checks)
        outcomes += frame_outcomes
        if count is not None:
            row_counts[frame] = count
    return GateReport(
        passed=not any(not o.success and o.severity == CRITICAL for o in outcomes),
        results=outcomes,
        seconds=time.perf_counter() - started,
        row_counts=row_counts,
        _build_docs=lambda target: _build_data_docs(context, target),
    )


def _validate_frame(gx, context, source, frame: str, df, checks: List[Check]):
    """One stored GX validation (one suite) per frame, then examples for the failed checks."""
    gxe = _gx_expectations()
    suite = gx.ExpectationSuite(name=frame)
    for check in checks:
        suite.add_expectation(_configured(check.expectation, check.name, check.severity, f"{check.name}: {check.rule}"))
    # The row count is always reported; GX computes it in the same aggregation as the column checks.
    suite.add_expectation(_configured(gxe.ExpectTableRowCountToBeBetween(min_value=0), _ROW_COUNT, "info", "row count"))
    suite = context.suites.add(suite)
    batch_definition = source.add_dataframe_asset(frame).add_batch_definition_whole_dataframe("staged")
    validation = context.validation_definitions.add(gx.ValidationDefinition(name=frame, data=batch_definition, suite=suite))
    result = validation.run(batch_parameters={"dataframe": df}, result_format=_VERDICTS)
    by_name = {(item.expectation_config.meta or {}).get(_NAME_KEY): item for item in result.results}
    count = (by_name[_ROW_COUNT].result or {}).get("observed_value")
    outcomes = [_outcome(frame, check, by_name[check.name], count) for check in checks]
    failed = [
        (check, outcome)
        for check, outcome in zip(checks, outcomes)
        if not outcome.success and not _raised(by_name[check.name])
    ]
    if any(check.example_source is not None for check, _ in failed):
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        for check, outcome in failed:
            _add_examples(batch, check, outcome)
    return outcomes, count


def _configured(expectation, name: str, severity: str, description: str):
    """A copy of the expectation carrying the gate's name and severity (the suite owns its copy)."""
    configured = expectation.copy(deep=True)
    configured.meta = {**(configured.meta or {}), _NAME_KEY: name}
    configured.severity = severity
    configured.description = description
    return configured


def _raised(item) -> Optional[str]:
    """The first line of the error GX caught while evaluating an expectation, if any. GX reports it
    flat, or per metric (a dict of such dicts) when a metric could not be computed."""
    info = item.exception_info or {}
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)] if isinstance(info, dict) else []
    for candidate in candidates:
        if candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error").strip().splitlines()[0]
    return None


def _outcome(frame: str, check: Check, item, row_count: Optional[int]) -> ExpectationOutcome:
    error = _raised(item)
    if error:
        return ExpectationOutcome(frame, check.name, check.severity, False, f"could not be evaluated ({error}); expected {check.rule}")
    if row_count == 0 and check.passes_when_empty:
        return ExpectationOutcome(frame, check.name, check.severity, True, "no rows")
    result = item.result or {}
    if "unexpected_count" in result:
        observed = _unexpected(result)
    elif check.observed is not None:
        observed = check.observed(result.get("observed_value"))
    else:  # a SQL check: GX reports how many rows the query returned
        observed = f"{result.get('observed_value')} rows unexpected"
    success = bool(item.success)
    return ExpectationOutcome(frame, check.name, check.severity, success, _details(observed, check, success))


def _unexpected(result: dict) -> str:
    return f"{result.get('unexpected_count') or 0} of {result.get('element_count') or 0} rows unexpected"


def _details(observed: str, check: Check, success: bool) -> str:
    return observed if success else f"{observed}; expected {check.rule}"


def _add_examples(batch, check: Check, outcome: ExpectationOutcome) -> None:
    """Fills in a few offending values (or rows, for SQL checks) of a failed check, and its exact
    count where the verdict came from a table-level metric."""
    if check.example_source is None:
        return
    if check.example_source is _SQL_ROWS:
        # Only GX's COMPLETE format returns a query's rows; SQL checks cover the small aggregates.
        result = batch.validate(check.expectation, result_format="COMPLETE").result or {}
        outcome.examples = list(((result.get("details") or {}).get("unexpected_rows") or [])[:EXAMPLES])
        return
    result = batch.validate(check.example_source, result_format=_EXAMPLES).result or {}
    outcome.examples = list(result.get("partial_unexpected_list") or [])[:EXAMPLES]
    if "unexpected_count" in result and check.example_source is not check.expectation:
        # The verdict came from a table-level share: the row-by-row count is the clearer figure.
        outcome.details = _details(_unexpected(result), check, False)


def _change(rows: Optional[int], previous: int) -> str:
    if rows is None or previous == 0:
        return "change unknown" if rows is None else "previously empty"
    return f"{(rows - previous) / previous:+.0%}"


def _percent(share: Any) -> str:
    return f"{share:.4%}" if isinstance(share, (int, float)) else "an unknown share"


def _share(rows: Optional[int], whole: int) -> str:
    return "an unknown share" if rows is None or whole == 0 else f"{rows / whole:.1%}"


# ---------------------------------------------------------------------------------------------
# Great Expectations set-up: offline, in memory, quiet
# ---------------------------------------------------------------------------------------------


def _import_gx():
    # Read by GX when it decides whether to send usage events; must be set before the import.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return gx


def _gx_expectations():
    _import_gx()
    import great_expectations.expectations as gxe

    return gxe


def _context(gx):
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


# ---------------------------------------------------------------------------------------------
# The report an analyst opens
# ---------------------------------------------------------------------------------------------

DATA_DOCS_SITE = "quality_gate"


def _build_data_docs(context, target: str) -> str:
    """Renders GX's HTML data docs for this run's validations into `target`; returns its index."""
    context.add_data_docs_site(
        DATA_DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": target},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    try:
        context.build_data_docs(site_names=[DATA_DOCS_SITE])
    finally:
        context.delete_data_docs_site(DATA_DOCS_SITE)
    index = os.path.join(target, "index.html")
    if not os.path.exists(index):
        raise RuntimeError("GX wrote no index.html")
    return index


def write_report(report: GateReport, local_dir: str) -> List[str]:
    """quality.json, plus GX data docs under data_docs/ when they build; returns the written paths."""
    os.makedirs(local_dir, exist_ok=True)
    written: List[str] = []
    payload = report.to_dict()
    docs_dir = os.path.join(local_dir, "data_docs")
    if report._build_docs is None:
        payload["data_docs"] = "data docs not built: the GX validation results are not in memory"
    else:
        scratch = tempfile.mkdtemp(prefix="quality-docs-")
        try:
            report._build_docs(scratch)
            if os.path.exists(docs_dir):
                shutil.rmtree(docs_dir)
            shutil.copytree(scratch, docs_dir, ignore=_binary_assets)
            payload["data_docs"] = "data_docs/index.html"
            # Every file, so a caller can copy the whole site to object storage.
            for folder, _, names in os.walk(docs_dir):
                written += sorted(os.path.join(folder, name) for name in names)
        except Exception as exc:  # the docs are a convenience: the JSON report must still be written
            payload["data_docs"] = f"data docs not built: {type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    path = os.path.join(local_dir, "quality.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    return [path] + written


def _binary_assets(folder: str, names: List[str]) -> List[str]:
    """GX's fonts and images (4 MB a run): the pages read fine without them, and what is left is
    text, which a caller can copy to object storage as such."""
    return [n for n in names if os.path.isfile(os.path.join(folder, n)) and not n.endswith((".html", ".css"))]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _short(value: Any) -> str:
    text = json.dumps(_json_safe(value), ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."
