"""Unit tests of the output comparison helpers, on Parquet folders written here with pyarrow (no Spark)."""
from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.reference.compare import (
    COLUMN_TYPES,
    LayoutError,
    assert_matches_reference,
    diff_tables,
    read_all,
)
from tests.reference.contract import PARTITION_COLUMNS, compute_tables
from tests.reference.logbuilder import change, image, seq, write_advisors, write_log

ARROW = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "double": pa.float64(),
         "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32()}


def publish(output: str, tables: dict, as_uri: bool = False) -> None:
    """Write tables the way the contract says the pipeline publishes them."""
    for table, rows in tables.items():
        partition = PARTITION_COLUMNS[table]
        schema = pa.schema([(c, ARROW[t]) for c, t in COLUMN_TYPES[table].items()])
        root = os.path.join(output, table)
        os.makedirs(root, exist_ok=True)
        if not rows:
            pq.write_table(pa.Table.from_pylist([], schema=schema), os.path.join(root, "part-0.parquet"))
            continue
        data_schema = pa.schema([f for f in schema if f.name != partition])
        for value in sorted({row[partition] for row in rows}):
            folder = os.path.join(root, f"{partition}={value.isoformat()}")
            os.makedirs(folder)
            members = [{k: v for k, v in row.items() if k != partition} for row in rows if row[partition] == value]
            if as_uri and table == "quarantine":
                members = [{**m, "source_file": "file://" + m["source_file"]} for m in members]
            pq.write_table(pa.Table.from_pylist(members, schema=data_schema), os.path.join(folder, "part-0.parquet"))


@pytest.fixture
def log(tmp_path):
    root = str(tmp_path / "in")
    write_advisors(root, [["adv-1", "A", "MATH", "300"]])
    write_log(root, "2026-03-01", "x.jsonl.gz", [
        change("e-1", "a-1", seq(1)),
        change("e-2", "a-2", seq(1), new_image=image("a-2", created_at="2026-03-04T00:00:00Z", status="COMPLETED")),
        change("e-3", "a-3", seq(1), new_image=image("a-3", duration_minutes=30.0)),
        "{bad",
    ])
    return root


def test_round_trip_agrees_and_tolerates_uri_paths(tmp_path, log):
    reference = compute_tables(log, "America/Chicago")
    publish(str(tmp_path / "out"), reference, as_uri=True)
    os.makedirs(tmp_path / "out" / "_versions")  # private folders are ignored
    published = assert_matches_reference(reference, str(tmp_path / "out"), log, "round trip")
    assert [r["date"].day for r in published["booking_trends_daily"]] == [1, 2, 3]  # 4 March 00:00Z is 3 March in Chicago


def test_differences_are_reported_with_the_row(tmp_path, log):
    reference = compute_tables(log)
    changed = [dict(row) for row in reference["appointments"]]
    changed[0]["lead_time_hours"] *= 1 + 1e-7
    changed[1]["lead_time_hours"] *= 1 + 1e-11  # within tolerance
    problems = diff_tables("appointments", reference["appointments"], changed[:2] + changed[:1])
    text = "\n".join(problems)
    assert "lead_time_hours" in text and "'a-1'" in text and "duplicate rows" in text
    assert "a-2" not in text.split("\n", 1)[1].replace("duplicate", "")


def test_quarantine_raw_lines_must_be_exact_and_images_equal_as_json(log):
    rows = compute_tables(log)["quarantine"]
    raw = next(r for r in rows if r["reason"] == "invalid_json")
    img = next(r for r in rows if r["reason"] == "bad_duration_minutes")
    respaced = {**img, "record": img["record"].replace(",", ", "), "reason": "duration_not_integer"}
    assert diff_tables("quarantine", [raw, img], [raw, respaced]) == []
    as_int = {**img, "record": img["record"].replace("30.0", "30")}
    assert diff_tables("quarantine", [img], [as_int])
    assert diff_tables("quarantine", [raw], [{**raw, "reason": "parse_error"}])  # the contract names invalid_json
    assert diff_tables("quarantine", [raw], [{**raw, "reason": "Invalid JSON"}])


def test_layout_problems_are_caught(tmp_path, log):
    reference = compute_tables(log)
    out = str(tmp_path / "out")
    publish(out, reference)
    stale = os.path.join(out, "appointments", "appointment_date=2020-01-01")
    os.makedirs(stale)
    schema = pa.schema([(c, ARROW[t]) for c, t in COLUMN_TYPES["appointments"].items() if c != "appointment_date"])
    pq.write_table(pa.Table.from_pylist([], schema=schema), os.path.join(stale, "part-0.parquet"))
    with pytest.raises(LayoutError, match="stale partition"):
        read_all(out)
    os.remove(os.path.join(stale, "part-0.parquet"))
    os.rmdir(stale)
    wrong = os.path.join(out, "quarantine", "ingest_date=2026-03-01", "part-0.parquet")
    table = pq.read_table(wrong)
    pq.write_table(table.set_column(0, "ingest_date_str", pa.array(["x"] * table.num_rows)), wrong)
    with pytest.raises(LayoutError, match="columns"):
        read_all(out)


def test_int96_timestamps_are_refused(tmp_path, log):
    reference = compute_tables(log)
    out = str(tmp_path / "out")
    publish(out, reference)
    path = os.path.join(out, "appointments", "appointment_date=2026-03-10", "part-0.parquet")
    pq.write_table(pq.read_table(path), path, use_deprecated_int96_timestamps=True)
    with pytest.raises(LayoutError):
        read_all(out)


def test_empty_table_is_one_file_with_all_columns(tmp_path, log):
    out = str(tmp_path / "out")
    publish(out, compute_tables(log, as_of=dt.date(2026, 2, 1)))
    assert read_all(out) == {t: [] for t in PARTITION_COLUMNS}
