"""The gate's suites: one list of named checks per frame, built as GX expectation objects.

Pure functions of the previous publish's row counts; nothing here touches data. docs/quality.md
describes every check (a test keeps the two in step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional

from jobs.contract import EVENT_NAMES, MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, STATUSES, TABLES
from jobs.quality.gx import gx_expectations

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
# An incremental run's change log holds only new files, and a shrinking quarantine is good news.
_NO_SHRINK_CHECK = ("change_log", "quarantine")
EXAMPLES = 5

_DIGITS = "^[0-9]+$"
_SNAKE_CASE = "^[a-z][a-z0-9_]*$"

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
    # SQL_ROWS for a SQL check, or None for table-level checks. Run on failure only.
    example_source: Any = None
    # GX reports a distinct-value share of 0 for an empty frame, where uniqueness holds trivially.
    passes_when_empty: bool = False


@dataclass(frozen=True)
class WholeTables:
    """A nightly run validates only the partitions it recomputed; these whole-table figures (counted by the
    pipeline) carry the invariants that span every partition."""

    rows: Mapping[str, int]
    duplicate_appointment_ids: int


# Marks SQL checks, whose offending rows only GX's COMPLETE result format returns.
SQL_ROWS = "sql rows"




def suite_checks(frame: str, previous_counts: Optional[Mapping[str, int]], row_counts: Mapping[str, int]) -> List[Check]:
    """Every check of one frame's suite. `row_counts` holds frames already validated in this run."""
    gxe = gx_expectations()
    checks = _SUITES[frame](gxe) if frame in _SUITES else []
    if frame in TABLES:
        schema, _ = TABLES[frame]
        required = [f.name for f in schema.fields if not f.nullable]
        checks = [_not_null(gxe, frame, column) for column in required] + checks
    previous = (previous_counts or {}).get(frame)
    if previous is not None and frame not in _NO_SHRINK_CHECK:
        name, severity, minimum, rule = shrink_rule(frame, previous)
        checks.append(
            Check(
                name,
                severity,
                rule,
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


def shrink_rule(frame: str, previous: int):
    """(name, severity, minimum rows, rule in words) of the check that a table kept enough of its rows."""
    minimum = int(math.ceil(previous * MIN_KEPT_SHARE))
    return (
        f"{frame}.row_count_vs_previous",
        CRITICAL if frame in SHRINK_IS_CRITICAL else WARNING,
        minimum,
        f"at least {minimum} rows (half of the previous publish's {previous})",
    )


def whole_table_outcomes(whole: WholeTables, previous_counts: Optional[Mapping[str, int]]) -> List[tuple]:
    """The whole-table invariants of a nightly run as (frame, name, severity, success, details), evaluated
    on the pipeline's counts: each table kept enough rows, and no appointment_id is in two partitions."""
    outcomes = []
    for frame, rows in whole.rows.items():
        previous = (previous_counts or {}).get(frame)
        if previous is not None and frame not in _NO_SHRINK_CHECK:
            name, severity, minimum, rule = shrink_rule(frame, previous)
            details = f"{rows} rows vs {previous} previously ({_change(rows, previous)})"
            outcomes.append((frame, name, severity, rows >= minimum, details if rows >= minimum else f"{details}; expected {rule}"))
    duplicates = whole.duplicate_appointment_ids
    outcomes.append((
        "appointments",
        "appointments.appointment_id_unique_whole_table",
        CRITICAL,
        duplicates == 0,
        f"{duplicates} appointment_id values in more than one row of the whole table"
        + ("" if duplicates == 0 else "; expected one row per appointment_id"),
    ))
    return outcomes


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
            example_source=SQL_ROWS,
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


def _change(rows: Optional[int], previous: int) -> str:
    if rows is None or previous == 0:
        return "change unknown" if rows is None else "previously empty"
    return f"{(rows - previous) / previous:+.0%}"


def _percent(share: Any) -> str:
    return f"{share:.4%}" if isinstance(share, (int, float)) else "an unknown share"


def _share(rows: Optional[int], whole: int) -> str:
    return "an unknown share" if rows is None or whole == 0 else f"{rows / whole:.1%}"
