"""Read a published output folder back and compare it with the reference tables (or another output).

Place in the flow: the differential tests run the Spark pipeline, then use `read_published` to load each
table (Hive-style partition folders, or the single empty Parquet file of an empty table), check its
physical layout against contract section 4, and `diff_tables` to list the rows that differ.

What counts as equal (see the test report for why):
- doubles: relative tolerance 1e-9 (plus 1e-12 absolute, for values that cancel to about zero);
- quarantine `source_file`: the same file, whatever the URI spelling (`file:/x`, `file:///x`, `/x`);
- quarantine `record`: a rejected line must be the raw line, byte for byte; a rejected winning image
  must be the same JSON value (any spacing or key order; 30 and 30.0 stay different), and a null image
  may be written as JSON `null` or as a null `record`;
- quarantine `reason`: any snake_case code, except that the codes the contract names (`invalid_json`,
  `unknown_event_name`, `bad_status`) must be used where the reference uses them.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from typing import Any, Optional
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from tests.reference.contract import IMAGE_REASONS, PARTITION_COLUMNS, TABLE_COLUMNS

_S, _I, _L, _D, _TS, _DATE = "string", "int", "long", "double", "timestamp", "date"
COLUMN_TYPES = {
    "appointments": {
        "appointment_id": _S, "student_id": _S, "advisor_id": _S, "department": _S, "status": _S,
        "channel": _S, "start_time": _TS, "created_at": _TS, "updated_at": _TS, "end_time": _TS,
        "duration_minutes": _I, "lead_time_hours": _D, "appointment_date": _DATE,
    },
    "advisor_daily_load": {
        "date": _DATE, "advisor_id": _S, "department": _S, "scheduled_count": _L, "completed_count": _L,
        "no_show_count": _L, "cancelled_count": _L, "booked_minutes": _L, "distinct_students": _L,
        "capacity_minutes": _L, "utilization": _D, "no_show_rate": _D,
    },
    "booking_trends_daily": {
        "date": _DATE, "department": _S, "bookings_created": _L, "cancelled_count": _L,
        "cancellation_rate": _D, "median_lead_time_hours": _D, "p90_lead_time_hours": _D,
        "bookings_7d_avg": _D,
    },
    "quarantine": {"ingest_date": _DATE, "reason": _S, "record": _S, "source_file": _S, "appointment_id": _S},
}
KEYS = {
    "appointments": ("appointment_id",),
    "advisor_daily_load": ("date", "advisor_id"),
    "booking_trends_daily": ("date", "department"),
    # Quarantine rows have no natural key: everything but the reason, compared as a multiset.
    "quarantine": ("ingest_date", "source_file", "appointment_id", "record"),
}
NAMED_REASONS = frozenset({"invalid_json", "unknown_event_name", "bad_status", "unconvertible_record"})
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
REL_TOL, ABS_TOL = 1e-9, 1e-12
SHOW = 5


class LayoutError(AssertionError):
    """The published folder breaks contract section 4 (columns, types, partitions)."""


def _arrow_kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _S
    if pa.types.is_int32(arrow_type):
        return _I
    if pa.types.is_int64(arrow_type):
        return _L
    if pa.types.is_float64(arrow_type):
        return _D
    if pa.types.is_date32(arrow_type):
        return _DATE
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us" and arrow_type.tz in ("UTC", "+00:00", "Etc/UTC"):
        return _TS
    return f"unexpected {arrow_type}"


def _check_file_schema(table: str, path: str, with_partition: bool) -> None:
    expected = {c: t for c, t in COLUMN_TYPES[table].items() if with_partition or c != PARTITION_COLUMNS[table]}
    schema = pq.read_schema(path)
    got = {field.name: _arrow_kind(field.type) for field in schema}
    if got != expected:
        raise LayoutError(f"{table}: {path} has columns {got}, the contract wants {expected}")
    # TIMESTAMP(MICROS, isAdjustedToUTC=true), not INT96: check the Parquet logical type itself.
    parquet_schema = pq.ParquetFile(path).schema
    for index in range(len(parquet_schema)):
        column = parquet_schema.column(index)
        if COLUMN_TYPES[table].get(column.name) == _TS:
            logical = str(column.logical_type)
            if column.physical_type != "INT64" or "isAdjustedToUTC=true" not in logical or "microseconds" not in logical:
                raise LayoutError(f"{table}.{column.name} in {path} is {column.physical_type} {logical}")


def read_published(output_dir: str, table: str) -> list[dict]:
    """Rows of one published table (partition column included), after checking its layout."""
    root = os.path.join(output_dir, table)
    if not os.path.isdir(root):
        raise LayoutError(f"{table}: no folder {root}")
    partition = PARTITION_COLUMNS[table]
    rows: list[dict] = []
    root_files, folders = [], []
    for name in sorted(os.listdir(root)):
        if name.startswith(("_", ".")):
            continue
        path = os.path.join(root, name)
        if os.path.isfile(path):
            root_files.append(path)
        elif re.fullmatch(rf"{partition}=[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}", name):
            folders.append(path)
        else:
            raise LayoutError(f"{table}: unexpected entry {path}")
    if root_files and folders:
        raise LayoutError(f"{table}: both partition folders and root files {root_files}")
    for path in root_files:
        _check_file_schema(table, path, with_partition=True)
        if pq.read_metadata(path).num_rows:
            raise LayoutError(f"{table}: root file {path} holds rows; rows belong in partition folders")
    for folder in folders:
        value = dt.date.fromisoformat(os.path.basename(folder).split("=", 1)[1])
        count = 0
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
            if dirnames:
                raise LayoutError(f"{table}: nested folders {dirnames} under {dirpath}")
            for name in sorted(filenames):
                if name.startswith(("_", ".")):
                    continue
                path = os.path.join(dirpath, name)
                _check_file_schema(table, path, with_partition=False)
                for row in pq.read_table(path).to_pylist():
                    row[partition] = value
                    rows.append({column: row[column] for column in TABLE_COLUMNS[table]})
                    count += 1
        if count == 0:
            raise LayoutError(f"{table}: stale partition {folder} holds no rows")
    return rows


def read_all(output_dir: str) -> dict[str, list[dict]]:
    return {table: read_published(output_dir, table) for table in TABLE_COLUMNS}


def _path(value: Optional[str], input_dir: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    if value.startswith("file:"):
        value = unquote(re.sub(r"^file:(//)?", "", value))
    if input_dir is not None and os.path.isabs(value):
        root = os.path.realpath(input_dir)
        real = os.path.realpath(value)
        if real.startswith(root + os.sep):
            return os.path.relpath(real, root)
    return value


def _json_value(text: Optional[str]) -> Optional[str]:
    """A canonical text for a JSON value that keeps 30 and 30.0 apart; None when not JSON."""
    if text is None:
        text = "null"
    try:
        value = json.loads(text, parse_int=lambda s: ["int", int(s)], parse_float=lambda s: ["float", float(s)])
    except ValueError:
        return None
    return json.dumps(value, sort_keys=True)


def _normalise(table: str, row: dict, input_dir: Optional[str]) -> dict:
    if table != "quarantine":
        return row
    row = dict(row)
    row["source_file"] = _path(row["source_file"], input_dir)
    row["raw_record"] = row["record"]
    canonical = _json_value(row["record"])
    row["record"] = canonical if canonical is not None else "raw:" + str(row["record"])
    return row


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return type(a) is type(b) and a == b


def _reason_problem(expected: str, got: Any) -> Optional[str]:
    if not isinstance(got, str) or not SNAKE_CASE.fullmatch(got):
        return f"reason {got!r} is not a snake_case code"
    if expected in NAMED_REASONS and got != expected:
        return f"reason: the contract names {expected!r}, got {got!r}"
    return None


def _sort_key(key: tuple) -> tuple:
    return tuple((value is None, str(value)) for value in key)


def diff_tables(
    table: str,
    expected: list[dict],
    got: list[dict],
    expected_input: Optional[str] = None,
    got_input: Optional[str] = None,
    reason_policy: str = "contract",
) -> list[str]:
    """Readable differences between two versions of one table; empty when they agree.

    Quarantine source files are compared relative to each side's input root. `reason_policy`
    "contract" compares quarantine reasons as the module docstring says (reference vs pipeline);
    "exact" requires identical reasons (pipeline vs pipeline).
    """
    key_columns = KEYS[table]
    left = [_normalise(table, row, expected_input) for row in expected]
    right = [_normalise(table, row, got_input) for row in got]
    problems = []
    by_key: dict[tuple, list[list[dict]]] = {}
    for side, rows in ((0, left), (1, right)):
        for row in rows:
            by_key.setdefault(tuple(row[c] for c in key_columns), [[], []])[side].append(row)
    missing, unexpected, changed = [], [], []
    for key in sorted(by_key, key=_sort_key):
        want, have = by_key[key]
        if table != "quarantine":
            if len(have) > 1:
                changed.append(f"duplicate rows for {dict(zip(key_columns, key))}: {have}")
            if not want:
                unexpected.append(have[0])
            elif not have:
                missing.append(want[0])
            else:
                diffs = [f"{c}: expected {want[0][c]!r}, got {have[0][c]!r}"
                         for c in TABLE_COLUMNS[table] if not _same(want[0][c], have[0][c])]
                if diffs:
                    changed.append(f"{dict(zip(key_columns, key))}: " + "; ".join(diffs))
            continue
        # Quarantine: pair rows of the same key, then check reasons and raw-line exactness.
        want = sorted(want, key=lambda r: r["reason"])
        have = sorted(have, key=lambda r: str(r["reason"]))
        missing.extend(want[len(have):])
        unexpected.extend(have[len(want):])
        for w, h in zip(want, have):
            notes = []
            if reason_policy == "exact":
                if w["reason"] != h["reason"]:
                    notes.append(f"reason: expected {w['reason']!r}, got {h['reason']!r}")
            else:
                note = _reason_problem(w["reason"], h["reason"])
                if note:
                    notes.append(note)
                if w["reason"] not in IMAGE_REASONS and w["raw_record"] != h["raw_record"]:
                    notes.append(f"record: expected the raw line {w['raw_record']!r}, got {h['raw_record']!r}")
            if notes:
                changed.append(f"{_show(w)}: " + "; ".join(notes))
    if missing or unexpected or changed:
        problems.append(
            f"{table}: expected {len(expected)} rows, got {len(got)}; {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(changed)} with other differences"
        )
        problems += [f"  missing:    {_show(row)}" for row in missing[:SHOW]]
        problems += [f"  unexpected: {_show(row)}" for row in unexpected[:SHOW]]
        problems += [f"  differs:    {text}" for text in changed[:SHOW]]
    return problems


def _show(row: dict) -> str:
    shown = {k: v for k, v in row.items() if k != "raw_record"}
    if "raw_record" in row:
        shown["record"] = row["raw_record"]
    return repr({k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in shown.items()})


def assert_matches_reference(reference: dict[str, list[dict]], output_dir: str, input_dir: str, what: str) -> dict:
    """The published tables under output_dir equal the reference tables; returns what was read."""
    published = read_all(str(output_dir))
    problems = []
    for table in TABLE_COLUMNS:
        problems += diff_tables(table, reference[table], published[table], str(input_dir), str(input_dir))
    assert not problems, f"{what}: pipeline output differs from the reference:\n" + "\n".join(problems)
    return published


def assert_same_outputs(expected_dir: str, expected_input: str, got_dir: str, got_input: str, what: str) -> None:
    """Two published outputs (say, a chain of incremental runs vs one full run) hold the same tables."""
    expected, got = read_all(str(expected_dir)), read_all(str(got_dir))
    problems = []
    for table in TABLE_COLUMNS:
        problems += diff_tables(table, expected[table], got[table], str(expected_input), str(got_input),
                                reason_policy="exact")
    assert not problems, f"{what}:\n" + "\n".join(problems)
