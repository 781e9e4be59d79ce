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
# incremental run holds only the new files).
MAX_QUARANTINE_SHARE = 0.05
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
    if previous is not None and frame != "change_log" and frame != "quarantine":
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
        limit = int(math.floor(row_counts["snapshot"] * MAX_QUARANTINE_SHARE))
        checks.append(
            Check(
                "quarantine.share_of_snapshot",
                WARNING,
                f"at most {limit} rows ({MAX_QUARANTINE_SHARE:.0%} of {row_counts['snapshot']} snapshot rows)",
                gxe.ExpectTableRowCountToBeBetween(max_value=limit),
                lambda rows: f"{rows} quarantined rows = {_share(rows, row_counts['snapshot'])} of the snapshot's rows",
            )
        )
    return checks


def _not_null(gxe, frame: str, column: str, severity: str = CRITICAL) -> Check:
    return Check(f"{frame}.{column}_not_null", severity, f"{column} is never null", gxe.ExpectColumnValuesToNotBeNull(column=column))


def _in_set(gxe, frame: str, column: str, values) -> Check:
    return Check(
        f"{frame}.{column}_in_set",
        CRITICAL,
        f"{column} is one of {', '.join(values)}",
        gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)),
    )


def _at_least(gxe, frame: str, column: str, minimum, severity: str = CRITICAL) -> Check:
    name = f"{frame}.{column}_non_negative" if minimum == 0 else f"{frame}.{column}_at_least_{minimum}"
    return Check(name, severity, f"{column} >= {minimum} (or null)", gxe.ExpectColumnValuesToBeBetween(column=column, min_value=minimum))


def _sql(gxe, name: str, severity: str, rule: str, where: str) -> Check:
    return Check(name, severity, rule, gxe.UnexpectedRowsExpectation(unexpected_rows_query="SELECT * FROM {batch} WHERE " + where))


def _change_records(gxe, frame: str) -> List[Check]:
    """Checks shared by the change log and the snapshot (which is made of change records)."""
    checks = [_not_null(gxe, frame, c) for c in ("event_id", "event_name", "sequence_number", "appointment_id")]
    checks += [
        _in_set(gxe, frame, "event_name", EVENT_NAMES),
        Check(
            f"{frame}.sequence_number_digits",
            CRITICAL,
            "sequence_number is a string of decimal digits",
            gxe.ExpectColumnValuesToMatchRegex(column="sequence_number", regex=_DIGITS),
        ),
        _not_null(gxe, frame, "approximate_creation_time"),
        _not_null(gxe, frame, "ingest_date"),
        _not_null(gxe, frame, "source_file"),
    ]
    return checks


def _change_log_suite(gxe) -> List[Check]:
    from great_expectations.expectations.row_conditions import Column

    return _change_records(gxe, "change_log") + [
        Check(
            "change_log.new_image_present_unless_remove",
            WARNING,
            "INSERT and MODIFY records carry a new_image",
            gxe.ExpectColumnValuesToNotBeNull(column="new_image", row_condition=Column("event_name") != "REMOVE"),
        ),
    ]


def _snapshot_suite(gxe) -> List[Check]:
    return _change_records(gxe, "snapshot") + [
        Check(
            "snapshot.appointment_id_unique",
            CRITICAL,
            "one row per appointment_id",
            gxe.ExpectColumnValuesToBeUnique(column="appointment_id"),
        ),
    ]


def _appointments_suite(gxe) -> List[Check]:
    return [
        Check(
            "appointments.appointment_id_unique",
            CRITICAL,
            "one row per appointment_id",
            gxe.ExpectColumnValuesToBeUnique(column="appointment_id"),
        ),
        _in_set(gxe, "appointments", "status", STATUSES),
        Check(
            "appointments.duration_minutes_in_range",
            CRITICAL,
            f"duration_minutes between {MIN_DURATION_MINUTES} and {MAX_DURATION_MINUTES}",
            gxe.ExpectColumnValuesToBeBetween(
                column="duration_minutes", min_value=MIN_DURATION_MINUTES, max_value=MAX_DURATION_MINUTES
            ),
        ),
        Check(
            "appointments.end_after_start",
            CRITICAL,
            "end_time > start_time",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end_time", column_B="start_time"),
        ),
    ]


def _advisor_daily_load_suite(gxe) -> List[Check]:
    frame = "advisor_daily_load"
    counts = ("scheduled_count", "completed_count", "no_show_count", "cancelled_count", "booked_minutes", "distinct_students")
    return [
        Check(
            f"{frame}.date_advisor_unique",
            CRITICAL,
            "one row per (date, advisor_id)",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["date", "advisor_id"]),
        ),
        *[_at_least(gxe, frame, column, 0) for column in counts + ("utilization",)],
        _at_least(gxe, frame, "capacity_minutes", 1),
        Check(
            f"{frame}.no_show_rate_in_unit_interval",
            CRITICAL,
            "no_show_rate between 0 and 1 (or null)",
            gxe.ExpectColumnValuesToBeBetween(column="no_show_rate", min_value=0, max_value=1),
        ),
        _sql(
            gxe,
            f"{frame}.scheduled_covers_completed_and_no_show",
            CRITICAL,
            "scheduled_count >= completed_count + no_show_count (both are active statuses)",
            "scheduled_count < completed_count + no_show_count",
        ),
        _sql(
            gxe,
            f"{frame}.distinct_students_within_scheduled",
            CRITICAL,
            "distinct_students <= scheduled_count",
            "distinct_students > scheduled_count",
        ),
        _sql(
            gxe,
            f"{frame}.row_has_an_appointment",
            CRITICAL,
            "every row counts at least one appointment (scheduled + cancelled >= 1)",
            "scheduled_count + cancelled_count < 1",
        ),
    ]


def _booking_trends_daily_suite(gxe) -> List[Check]:
    frame = "booking_trends_daily"
    return [
        Check(
            f"{frame}.date_department_unique",
            CRITICAL,
            "one row per (date, department)",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["date", "department"]),
        ),
        *[_at_least(gxe, frame, column, 0) for column in ("bookings_created", "cancelled_count", "bookings_7d_avg")],
        Check(
            f"{frame}.cancelled_within_bookings",
            CRITICAL,
            "cancelled_count <= bookings_created",
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="bookings_created", column_B="cancelled_count", or_equal=True),
        ),
        Check(
            f"{frame}.cancellation_rate_in_unit_interval",
            CRITICAL,
            "cancellation_rate between 0 and 1 (or null)",
            gxe.ExpectColumnValuesToBeBetween(column="cancellation_rate", min_value=0, max_value=1),
        ),
        Check(
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
        Check(
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


def run_gate(frames: Mapping[str, Any], previous_counts: Optional[Mapping[str, int]]) -> GateReport:
    """Validate every frame present with its suite; passed only if no critical expectation failed."""
    started = time.perf_counter()
    gx = _import_gx()
    context = _context(gx)
    source = context.data_sources.add_spark("staged", persist=False)
    outcomes: List[ExpectationOutcome] = []
    row_counts: Dict[str, int] = {}
    for frame in [name for name in FRAME_ORDER if name in frames] + sorted(set(frames) - set(FRAME_ORDER)):
        checks = suite_checks(frame, previous_counts, row_counts)
        if not checks:
            continue
        frame_outcomes, count = _validate_frame(gx, context, source, frame, frames[frame], checks)
        outcomes += frame_outcomes
        if count is not None:
            row_counts[frame] = count
    passed = not any(not o.success and o.severity == CRITICAL for o in outcomes)
    return GateReport(
        passed=passed,
        results=outcomes,
        seconds=time.perf_counter() - started,
        row_counts=row_counts,
        _build_docs=lambda target: _build_data_docs(context, target),
    )


def _validate_frame(gx, context, source, frame: str, df, checks: List[Check]):
    """One GX validation (one suite) per frame, so GX bundles the column checks into few Spark jobs."""
    gxe = _gx_expectations()
    suite = gx.ExpectationSuite(name=frame)
    for check in checks:
        suite.add_expectation(_configured(check.expectation, check.name, check.severity, f"{check.name}: {check.rule}"))
    # The row count is always reported; GX computes it in the same aggregation as the column checks.
    suite.add_expectation(_configured(gxe.ExpectTableRowCountToBeBetween(min_value=0), _COUNT, "info", "row count"))
    suite = context.suites.add(suite)
    batch_definition = source.add_dataframe_asset(frame).add_batch_definition_whole_dataframe("staged")
    validation = context.validation_definitions.add(gx.ValidationDefinition(name=frame, data=batch_definition, suite=suite))
    result = validation.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "BASIC", "partial_unexpected_count": EXAMPLES},
    )
    by_name = {item.expectation_config.meta.get(_NAME_KEY): item for item in result.results}
    count = (by_name[_COUNT].result or {}).get("observed_value")
    outcomes = []
    for check in checks:
        outcome = _outcome(frame, check, by_name[check.name])
        if not outcome.success and not outcome.examples and _is_sql(check):
            outcome.examples = _unexpected_rows(batch_definition, df, check)
        outcomes.append(outcome)
    return outcomes, count


_NAME_KEY = "gate_name"
_COUNT = "row_count"


def _configured(expectation, name: str, severity: str, description: str):
    """A copy of the expectation carrying the gate's name and severity (the suite owns its copy)."""
    configured = expectation.copy(deep=True)
    configured.meta = {**(configured.meta or {}), _NAME_KEY: name}
    configured.severity = severity
    configured.description = description
    return configured


def _is_sql(check: Check) -> bool:
    return type(check.expectation).__name__ == "UnexpectedRowsExpectation"


def _unexpected_rows(batch_definition, df, check: Check) -> List[Any]:
    """A few offending rows of a failed SQL check: only GX's COMPLETE format returns them, so it runs
    again alone, on failure only (the aggregate tables these checks cover are small)."""
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(check.expectation, result_format="COMPLETE")
    rows = ((result.result or {}).get("details") or {}).get("unexpected_rows") or []
    return list(rows)[:EXAMPLES]


def _outcome(frame: str, check: Check, item) -> ExpectationOutcome:
    exception = item.exception_info or {}
    if isinstance(exception, dict) and exception.get("raised_exception"):
        message = str(exception.get("exception_message") or "unknown error").strip().splitlines()[0]
        return ExpectationOutcome(frame, check.name, check.severity, False, f"expected {check.rule}; could not be evaluated: {message}")
    result = item.result or {}
    success = bool(item.success)
    examples: List[Any] = []
    if "unexpected_count" in result:
        broken, total = result.get("unexpected_count") or 0, result.get("element_count") or 0
        details = f"expected {check.rule}; {broken} of {total} rows break it"
        examples = list(result.get("partial_unexpected_list") or [])[:EXAMPLES] if not success else []
    elif check.observed is not None:
        details = check.observed(result.get("observed_value"))
        details = details if success else f"{details}; expected {check.rule}"
    else:
        details = f"expected {check.rule}; {result.get('observed_value')} rows break it"
    return ExpectationOutcome(frame, check.name, check.severity, success, details, examples)


def _change(rows: Optional[int], previous: int) -> str:
    if rows is None or previous == 0:
        return "change unknown" if rows is None else "previously empty"
    return f"{(rows - previous) / previous:+.0%}"


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
            shutil.copytree(scratch, docs_dir)
            payload["data_docs"] = "data_docs/index.html"
            written.append(os.path.join(docs_dir, "index.html"))
        except Exception as exc:  # the docs are a convenience: the JSON report must still be written
            payload["data_docs"] = f"data docs not built: {type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    path = os.path.join(local_dir, "quality.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    return [path] + written


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
