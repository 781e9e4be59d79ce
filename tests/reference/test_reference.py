"""Unit tests of the reference implementation itself: one small hand-made log per contract rule."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from fractions import Fraction

import pytest

from tests.reference.contract import (
    IMAGE_REASONS,
    TABLE_COLUMNS,
    DuplicateAdvisorError,
    compute_tables,
    parse_timestamp,
    quantile,
)
from tests.reference.logbuilder import DROP, change, image, seq, write_advisors, write_log

UTC = dt.timezone.utc
D1, D2, D3 = "2026-03-01", "2026-03-02", "2026-03-03"


def ids(rows):
    return sorted(row["appointment_id"] for row in rows)


def by_id(rows):
    return {row["appointment_id"]: row for row in rows}


def reasons(tables):
    return sorted((row["appointment_id"], row["reason"]) for row in tables["quarantine"])


# --- timestamps ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-01T12:00:00Z", dt.datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00.5Z", dt.datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-03-01T12:00:00.123456Z", dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T12:00:00.1234567Z", dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-01T12:00:00.999999999Z", dt.datetime(2026, 3, 1, 12, 0, 0, 999999, tzinfo=UTC)),
        ("2026-03-01T12:00:00+05:30", dt.datetime(2026, 3, 1, 6, 30, tzinfo=UTC)),
        ("2026-03-01T00:30:00.25-06:00", dt.datetime(2026, 3, 1, 6, 30, 0, 250000, tzinfo=UTC)),
        ("2028-02-29T23:59:59-00:00", dt.datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_valid_timestamps_parse_to_utc_micros(text, expected):
    parsed = parse_timestamp(text)
    assert parsed == expected and parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T12:00:00",  # no offset
        "2026-03-01 12:00:00Z",  # space for T
        "2026-03-01T12:00Z",  # missing seconds
        "2026-03-01T12:00:00+0530",
        "2026-02-30T12:00:00Z",  # impossible date
        "2026-02-29T12:00:00Z",  # not a leap year
        "2026-03-01T24:00:00Z",
        "2026-03-01T12:00:60Z",
        "2026-03-01T12:00:00.Z",  # empty fraction
        "2026-03-01T12:00:00.1234567890Z",  # 10 fraction digits
        "2026-03-01t12:00:00Z",
        "2026-03-01T12:00:00z",
        "2026-3-01T12:00:00Z",
        " 2026-03-01T12:00:00Z",
        "2026-03-01T12:00:00Z\n",
        "2026-03-01T12:00:00+05",
        "２０２６-03-01T12:00:00Z",  # full-width digits are not decimal digits here
        1772366400,
        None,
    ],
)
def test_invalid_timestamps(text):
    assert parse_timestamp(text) is None


# --- quantiles ----------------------------------------------------------------------------------

def test_quantile_linear_interpolation():
    half, p90 = Fraction(1, 2), Fraction(9, 10)
    assert quantile([], half) is None
    assert quantile([7.0], half) == 7.0 and quantile([7.0], p90) == 7.0
    assert quantile([4.0, 1.0, 3.0, 2.0], half) == 2.5
    # position (10-1)*0.9 = 8.1 -> 9 + 0.1*(10-9)
    assert quantile([float(v) for v in range(1, 11)], p90) == 9.1
    # position (3-1)*0.9 = 1.8 -> 10 + 0.8*(100-10)
    assert quantile([100.0, 0.0, 10.0], p90) == 82.0


# --- rule 1: line validity ----------------------------------------------------------------------

def test_rejected_lines_are_quarantined_with_raw_line_and_never_stop_the_run(tmp_path):
    good = change("e-ok", "a-ok", seq(1))
    lines = [
        "{not json",
        "[1, 2]",
        '"a string"',
        "",
        "   ",
        change("e-1", "a-miss-ev", seq(1), event_name=DROP),
        change("e-2", "a-null-seq", None),
        change("e-3", "a-empty-seq", ""),
        change("e-4", "a-num-seq", 100000000000000000001),
        change("e-5", "a-alpha-seq", "12a4"),
        change("e-6", "a-neg-seq", "-5"),
        change("e-7", "a-lower", seq(1), event_name="insert"),
        change("e-8", "a-upsert", seq(1), event_name="UPSERT"),
        change("e-9", "a-act", seq(1), created="2026-03-01 12:00:00Z"),
        change("", "a-empty-eid", seq(1)),
        change("e-10", "", seq(1)),
        change("e-11", None, seq(1)),
        change("e-12", "a-nokeys", seq(1), keys=DROP),
        '{"event_id": "e-13", "event_name": "INSERT", "sequence_number": "1", "approximate_creation_time": NaN, "keys": {"appointment_id": "a-nan"}}',
        good,
    ]
    write_log(str(tmp_path), D1, "part-1.jsonl.gz", lines)
    tables = compute_tables(str(tmp_path))
    assert ids(tables["appointments"]) == ["a-ok"]
    got = sorted((row["appointment_id"] or "", row["reason"]) for row in tables["quarantine"])
    assert got == sorted([
        ("", "invalid_json"),
        ("", "not_json_object"),
        ("", "not_json_object"),
        ("a-miss-ev", "missing_event_name"),
        ("a-null-seq", "missing_sequence_number"),
        ("a-empty-seq", "missing_sequence_number"),
        ("a-num-seq", "bad_sequence_number"),
        ("a-alpha-seq", "bad_sequence_number"),
        ("a-neg-seq", "bad_sequence_number"),
        ("a-lower", "unknown_event_name"),
        ("a-upsert", "unknown_event_name"),
        ("a-act", "bad_approximate_creation_time"),
        ("a-empty-eid", "missing_event_id"),
        ("", "missing_appointment_id"),
        ("", "missing_appointment_id"),
        ("", "missing_appointment_id"),
        ("", "invalid_json"),
    ])
    raw = {row["record"] for row in tables["quarantine"]}
    assert "{not json" in raw and json.dumps(lines[7]) in raw
    assert {row["ingest_date"] for row in tables["quarantine"]} == {dt.date(2026, 3, 1)}
    assert {row["source_file"] for row in tables["quarantine"]} == {
        os.path.join(str(tmp_path), "appointments", f"ingest_date={D1}", "part-1.jsonl.gz")
    }


def test_a_rejected_line_that_occurs_twice_is_quarantined_twice(tmp_path):
    write_log(str(tmp_path), D1, "a.jsonl.gz", ["{oops", "{oops"])
    write_log(str(tmp_path), D2, "b.jsonl.gz", [change("e-1", "a-1", seq(1), event_name="PUT")])
    write_log(str(tmp_path), D3, "b.jsonl.gz", [change("e-1", "a-1", seq(1), event_name="PUT")])
    rows = compute_tables(str(tmp_path))["quarantine"]
    assert sorted((r["ingest_date"].isoformat(), r["reason"]) for r in rows) == [
        (D1, "invalid_json"), (D1, "invalid_json"), (D2, "unknown_event_name"), (D3, "unknown_event_name"),
    ]


def test_layout_plain_jsonl_subfolders_and_non_data_files(tmp_path):
    root = str(tmp_path)
    write_log(root, D1, "plain.jsonl", [change("e-1", "a-plain", seq(1))])
    write_log(root, D1, "deep.jsonl.gz", [change("e-2", "a-deep", seq(1))], subdir="batch/7")
    write_log(root, D1, "notes.txt", [change("e-3", "a-txt", seq(1))])
    write_log(root, D1, "_tmp.jsonl.gz", [change("e-4", "a-hidden", seq(1))])
    write_log(root, "2026-02-30", "x.jsonl.gz", [change("e-6", "a-bad-folder", seq(1))])
    os.makedirs(tmp_path / "appointments" / "stray", exist_ok=True)
    with gzip.open(tmp_path / "appointments" / "stray" / "x.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(change("e-5", "a-stray", seq(1))) + "\n")
    assert ids(compute_tables(root)["appointments"]) == ["a-deep", "a-plain"]


def test_crlf_line_ends_and_missing_final_newline(tmp_path):
    path = tmp_path / "appointments" / f"ingest_date={D1}" / "x.jsonl"
    path.parent.mkdir(parents=True)
    first, second = json.dumps(change("e-1", "a-1", seq(1))), json.dumps(change("e-2", "a-2", seq(1)))
    path.write_bytes(f"{first}\r\n\r\n{second}".encode())
    assert ids(compute_tables(str(tmp_path))["appointments"]) == ["a-1", "a-2"]


# --- rules 2-4: which change wins --------------------------------------------------------------

def test_sequence_numbers_compare_as_integers(tmp_path):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [
        # 22 digits beats any 21-digit number, though it sorts lower as a string.
        change("e-1", "a-len", "9" * 21, new_image=image("a-len", status="BOOKED")),
        change("e-2", "a-len", "1" + "0" * 21, new_image=image("a-len", status="COMPLETED")),
        # Leading zeros do not make a number bigger.
        change("e-3", "a-zero", "0000000000000000000099", new_image=image("a-zero", status="COMPLETED")),
        change("e-4", "a-zero", "100", new_image=image("a-zero", status="NO_SHOW")),
    ])
    rows = by_id(compute_tables(str(tmp_path))["appointments"])
    assert rows["a-len"]["status"] == "COMPLETED"
    assert rows["a-zero"]["status"] == "NO_SHOW"


def test_sequence_ties_break_by_creation_instant_then_event_id(tmp_path):
    same = seq(5)
    write_log(str(tmp_path), D1, "x.jsonl.gz", [
        # 12:00+02:00 is 10:00Z, earlier than 11:00Z, although it sorts later as text.
        change("e-9", "a-instant", same, created="2026-03-01T12:00:00+02:00",
               new_image=image("a-instant", status="BOOKED")),
        change("e-1", "a-instant", same, created="2026-03-01T11:00:00Z",
               new_image=image("a-instant", status="COMPLETED")),
        # Equal instants once truncated to microseconds: the greatest event_id wins.
        change("e-b", "a-eid", same, created="2026-03-01T11:00:00.0000009Z",
               new_image=image("a-eid", status="BOOKED")),
        change("e-c", "a-eid", same, created="2026-03-01T06:00:00-05:00",
               new_image=image("a-eid", status="NO_SHOW")),
        change("e-a", "a-eid", same, created="2026-03-01T11:00:00Z",
               new_image=image("a-eid", status="COMPLETED")),
    ])
    rows = by_id(compute_tables(str(tmp_path))["appointments"])
    assert rows["a-instant"]["status"] == "COMPLETED"
    assert rows["a-eid"]["status"] == "NO_SHOW"


def test_event_id_copies_across_folders_are_one_change(tmp_path):
    bad = change("e-2", "a-1", seq(2), event_name="MODIFY", new_image=image("a-1", status="booked"))
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1))])
    write_log(str(tmp_path), D2, "retry.jsonl.gz", [bad])
    write_log(str(tmp_path), D3, "retry.jsonl.gz", [bad])
    tables = compute_tables(str(tmp_path))
    assert tables["appointments"] == []
    (row,) = tables["quarantine"]
    assert (row["reason"], row["appointment_id"], row["ingest_date"]) == ("bad_status", "a-1", dt.date(2026, 3, 2))
    assert json.loads(row["record"]) == bad["new_image"]


def test_remove_wins_over_late_older_changes(tmp_path):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [
        change("e-1", "a-1", seq(1)),
        change("e-3", "a-1", seq(3), event_name="REMOVE"),
        change("e-10", "a-2", seq(10), new_image=image("a-2", status="COMPLETED")),
    ])
    # A retried older batch lands later: it must neither resurrect a-1 nor roll a-2 back.
    write_log(str(tmp_path), D2, "late.jsonl.gz", [
        change("e-2", "a-1", seq(2), event_name="MODIFY"),
        change("e-9", "a-2", seq(9), event_name="MODIFY", new_image=image("a-2", status="BOOKED")),
        change("e-8", "a-2", seq(8), event_name="MODIFY", new_image=image("a-2", status="bad")),
    ])
    tables = compute_tables(str(tmp_path))
    assert ids(tables["appointments"]) == ["a-2"]
    assert tables["appointments"][0]["status"] == "COMPLETED"
    assert tables["quarantine"] == []


def test_insert_after_remove_recreates_the_appointment(tmp_path):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [
        change("e-1", "a-1", seq(1), new_image=image("a-1", student_id="s-old")),
        change("e-2", "a-1", seq(2), event_name="REMOVE"),
    ])
    write_log(str(tmp_path), D2, "x.jsonl.gz", [change("e-3", "a-1", seq(3), new_image=image("a-1", student_id="s-new"))])
    assert compute_tables(str(tmp_path), as_of=dt.date(2026, 3, 1))["appointments"] == []
    (row,) = compute_tables(str(tmp_path))["appointments"]
    assert row["student_id"] == "s-new"


# --- rule 5: the winning image ------------------------------------------------------------------

def test_invalid_winner_is_quarantined_until_a_newer_valid_change(tmp_path):
    root = str(tmp_path)
    write_log(root, D1, "x.jsonl.gz", [
        change("e-1", "a-1", seq(1)),
        change("e-2", "a-1", seq(2), event_name="MODIFY", new_image=image("a-1", duration_minutes=30.0)),
    ])
    write_log(root, D2, "y.jsonl.gz", [change("e-3", "a-1", seq(3), event_name="MODIFY")])
    before = compute_tables(root, as_of=dt.date(2026, 3, 1))
    assert before["appointments"] == []
    (row,) = before["quarantine"]
    assert row["reason"] == "bad_duration_minutes" and row["appointment_id"] == "a-1"
    assert row["source_file"].endswith(os.path.join(f"ingest_date={D1}", "x.jsonl.gz"))
    after = compute_tables(root)
    assert ids(after["appointments"]) == ["a-1"] and after["quarantine"] == []


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"duration_minutes": 30.0}, "bad_duration_minutes"),
        ({"duration_minutes": "30"}, "bad_duration_minutes"),
        ({"duration_minutes": True}, "bad_duration_minutes"),
        ({"duration_minutes": 4}, "bad_duration_minutes"),
        ({"duration_minutes": 481}, "bad_duration_minutes"),
        ({"duration_minutes": DROP}, "bad_duration_minutes"),
        ({"status": "booked"}, "bad_status"),
        ({"status": None}, "bad_status"),
        ({"student_id": ""}, "bad_student_id"),
        ({"student_id": 12345}, "bad_student_id"),
        ({"advisor_id": DROP}, "bad_advisor_id"),
        ({"department": None}, "bad_department"),
        ({"appointment_id": "a-other"}, "appointment_id_mismatch"),
        ({"appointment_id": ""}, "bad_appointment_id"),
        ({"start_time": "2026-03-10T15:00:00+0530"}, "bad_start_time"),
        ({"created_at": "2026-02-30T12:00:00Z"}, "bad_created_at"),
        ({"updated_at": "2026-03-01T12:00Z"}, "bad_updated_at"),
        ({"channel": 7}, "bad_channel"),
    ],
)
def test_image_rules(tmp_path, overrides, reason):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1), new_image=image("a-1", **overrides))])
    tables = compute_tables(str(tmp_path))
    assert tables["appointments"] == []
    assert reasons(tables) == [("a-1", reason)] and reason in IMAGE_REASONS


@pytest.mark.parametrize("new_image, reason, record", [(None, "null_image", "null"), ("x", "image_not_object", '"x"')])
def test_null_or_scalar_image(tmp_path, new_image, reason, record):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1), event_name="MODIFY", new_image=new_image)])
    (row,) = compute_tables(str(tmp_path))["quarantine"]
    assert (row["reason"], row["record"]) == (reason, record) and reason in IMAGE_REASONS


def test_valid_edges_and_ignored_attributes(tmp_path):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [
        change("e-1", "a-5", seq(1), new_image=image("a-5", duration_minutes=5, channel=None, extra={"x": 1})),
        change("e-2", "a-480", seq(1), new_image=image("a-480", duration_minutes=480, channel=DROP)),
    ])
    rows = by_id(compute_tables(str(tmp_path))["appointments"])
    assert rows["a-5"]["channel"] is None and rows["a-480"]["channel"] is None
    assert rows["a-480"]["end_time"] == dt.datetime(2026, 3, 10, 23, 0, tzinfo=UTC)


# --- appointments columns and local dates -------------------------------------------------------

def test_appointment_columns(tmp_path):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1), new_image=image(
        "a-1", start_time="2026-03-10T09:30:00.1234567-06:00", created_at="2026-03-10T16:00:00+01:00",
        updated_at="2026-03-10T15:00:00.5Z", duration_minutes=45))])
    (row,) = compute_tables(str(tmp_path))["appointments"]
    assert list(row) == list(TABLE_COLUMNS["appointments"])
    assert row["start_time"] == dt.datetime(2026, 3, 10, 15, 30, 0, 123456, tzinfo=UTC)
    assert row["end_time"] == dt.datetime(2026, 3, 10, 16, 15, 0, 123456, tzinfo=UTC)
    assert row["updated_at"] == dt.datetime(2026, 3, 10, 15, 0, 0, 500000, tzinfo=UTC)
    assert row["lead_time_hours"] == pytest.approx(0.5 + 0.123456 / 3600, rel=1e-15)
    assert row["duration_minutes"] == 45 and row["appointment_date"] == dt.date(2026, 3, 10)


def test_negative_lead_time(tmp_path):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1), new_image=image(
        "a-1", start_time="2026-03-01T10:00:00Z", created_at="2026-03-01T13:30:00Z"))])
    assert compute_tables(str(tmp_path))["appointments"][0]["lead_time_hours"] == -3.5


@pytest.mark.parametrize(
    "zone, start, expected",
    [
        ("UTC", "2026-03-10T04:30:00Z", "2026-03-10"),
        ("America/Chicago", "2026-03-10T04:30:00Z", "2026-03-09"),  # 23:30 CDT
        ("America/Chicago", "2026-03-10T05:00:00Z", "2026-03-10"),  # 00:00 CDT
        ("America/Chicago", "2026-03-08T05:59:59Z", "2026-03-07"),  # 23:59:59 CST, before the DST switch
        ("America/Chicago", "2026-03-08T06:00:00Z", "2026-03-08"),
        ("Asia/Kolkata", "2026-03-09T18:29:59.999999Z", "2026-03-09"),
        ("Asia/Kolkata", "2026-03-09T18:30:00Z", "2026-03-10"),
        ("Pacific/Auckland", "2026-03-09T11:00:00Z", "2026-03-10"),  # NZDT +13
    ],
)
def test_local_dates_around_midnight(tmp_path, zone, start, expected):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1), new_image=image(
        "a-1", start_time=start, created_at=start))])
    tables = compute_tables(str(tmp_path), timezone=zone)
    assert tables["appointments"][0]["appointment_date"].isoformat() == expected
    assert [row["date"].isoformat() for row in tables["advisor_daily_load"]] == [expected]
    assert [row["date"].isoformat() for row in tables["booking_trends_daily"]] == [expected]


# --- advisor_daily_load --------------------------------------------------------------------------

def test_advisor_daily_load_counts_and_dimension(tmp_path):
    root = str(tmp_path)
    write_advisors(root, [
        ["adv-1", 'Pat "PJ" Smith, Jr.', "MATH", "120"],
        ["adv-2", "Lee\nTwo Lines", "PHYS", "450.5"],
        ["adv-3", "Zero", "CHEM", "0"],
    ])
    day = "2026-03-10T"
    write_log(root, D1, "x.jsonl.gz", [
        change("e-1", "a-1", seq(1), new_image=image("a-1", start_time=day + "09:00:00Z", status="BOOKED", student_id="s-1", duration_minutes=60)),
        change("e-2", "a-2", seq(1), new_image=image("a-2", start_time=day + "10:00:00Z", status="COMPLETED", student_id="s-1", duration_minutes=60)),
        change("e-3", "a-3", seq(1), new_image=image("a-3", start_time=day + "11:00:00Z", status="NO_SHOW", student_id="s-2", duration_minutes=30)),
        change("e-4", "a-4", seq(1), new_image=image("a-4", start_time=day + "12:00:00Z", status="CANCELLED", student_id="s-3", duration_minutes=90)),
        change("e-5", "a-5", seq(1), new_image=image("a-5", advisor_id="adv-2", status="CANCELLED")),
        change("e-6", "a-6", seq(1), new_image=image("a-6", advisor_id="adv-9", status="COMPLETED")),
        change("e-7", "a-7", seq(1), new_image=image("a-7", advisor_id="adv-3")),
    ])
    rows = {row["advisor_id"]: row for row in compute_tables(root)["advisor_daily_load"]}
    assert list(rows["adv-1"]) == list(TABLE_COLUMNS["advisor_daily_load"])
    assert rows["adv-1"] == {
        "date": dt.date(2026, 3, 10), "advisor_id": "adv-1", "department": "MATH",
        "scheduled_count": 3, "completed_count": 1, "no_show_count": 1, "cancelled_count": 1,
        "booked_minutes": 150, "distinct_students": 2, "capacity_minutes": 120, "utilization": 1.25,
        "no_show_rate": 0.5,
    }
    # Only cancelled: still a row; capacity not an integer -> unknown, department still applies.
    assert rows["adv-2"]["department"] == "PHYS" and rows["adv-2"]["scheduled_count"] == 0
    assert rows["adv-2"]["capacity_minutes"] is None and rows["adv-2"]["utilization"] is None
    assert rows["adv-2"]["no_show_rate"] is None and rows["adv-2"]["booked_minutes"] == 0
    # Not listed: no department, no capacity.
    assert (rows["adv-9"]["department"], rows["adv-9"]["capacity_minutes"], rows["adv-9"]["utilization"]) == (None, None, None)
    assert rows["adv-9"]["no_show_rate"] == 0.0
    assert (rows["adv-3"]["department"], rows["adv-3"]["capacity_minutes"]) == ("CHEM", None)


@pytest.mark.parametrize("capacity, expected", [("480", 480), ("0", None), ("-60", None), ("480.0", None),
                                                 ("1e3", None), ("", None), (" 480", None), ("abc", None)])
def test_capacity_must_be_a_positive_integer(tmp_path, capacity, expected):
    write_advisors(str(tmp_path), [["adv-1", "A", "MATH", capacity]])
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1))])
    (row,) = compute_tables(str(tmp_path))["advisor_daily_load"]
    assert row["capacity_minutes"] == expected and row["department"] == "MATH"


def test_doubled_quotes_in_advisors_csv(tmp_path):
    path = tmp_path / "advisors" / "advisors.csv"
    path.parent.mkdir()
    path.write_text('advisor_id,advisor_name,department,daily_capacity_minutes\n'
                    '"adv-1","Pat ""PJ"" Smith","Dept, ""Quoted""",300\n')
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1))])
    (row,) = compute_tables(str(tmp_path))["advisor_daily_load"]
    assert (row["department"], row["capacity_minutes"], row["utilization"]) == ('Dept, "Quoted"', 300, 0.1)


def test_duplicated_advisor_id_is_an_error_naming_it(tmp_path):
    write_advisors(str(tmp_path), [["adv-1", "A", "MATH", "300"]], name="a.csv")
    write_advisors(str(tmp_path), [["adv-7", "B", "MATH", "300"], ["adv-1", "C", "PHYS", "100"]], name="b.csv")
    with pytest.raises(DuplicateAdvisorError, match="adv-1"):
        compute_tables(str(tmp_path))


# --- booking_trends_daily ------------------------------------------------------------------------

def test_booking_trends_zero_fill_7_day_average_and_quantiles(tmp_path):
    start = "2026-03-20T12:00:00Z"
    lines = []
    for n, (created, status, dept) in enumerate([
        ("2026-03-01T00:00:00Z", "BOOKED", "MATH"),  # lead 468h
        ("2026-03-01T12:00:00Z", "CANCELLED", "MATH"),  # lead 456h
        ("2026-03-01T18:00:00Z", "BOOKED", "MATH"),  # lead 450h
        ("2026-03-02T12:00:00Z", "COMPLETED", "MATH"),
        ("2026-03-10T12:00:00Z", "BOOKED", "MATH"),
        ("2026-03-05T12:00:00Z", "BOOKED", "PHYS"),
    ]):
        aid = f"a-{n}"
        lines.append(change(f"e-{n}", aid, seq(1), new_image=image(
            aid, created_at=created, start_time=start, status=status, department=dept)))
    write_log(str(tmp_path), D1, "x.jsonl.gz", lines)
    rows = {(r["department"], r["date"].isoformat()): r for r in compute_tables(str(tmp_path))["booking_trends_daily"]}
    math_days = sorted(d for dept, d in rows if dept == "MATH")
    assert math_days == [f"2026-03-{day:02d}" for day in range(1, 11)]
    assert [d for dept, d in rows if dept == "PHYS"] == ["2026-03-05"]
    first = rows[("MATH", "2026-03-01")]
    assert list(first) == list(TABLE_COLUMNS["booking_trends_daily"])
    assert (first["bookings_created"], first["cancelled_count"]) == (3, 1)
    assert first["cancellation_rate"] == pytest.approx(1 / 3, rel=1e-15)
    assert first["median_lead_time_hours"] == 456.0
    assert first["p90_lead_time_hours"] == pytest.approx(465.6, rel=1e-15)  # 456 + 0.8 * 12
    assert first["bookings_7d_avg"] == pytest.approx(3 / 7, rel=1e-15)
    empty = rows[("MATH", "2026-03-03")]
    assert (empty["bookings_created"], empty["cancelled_count"]) == (0, 0)
    assert empty["cancellation_rate"] is None and empty["median_lead_time_hours"] is None
    assert empty["p90_lead_time_hours"] is None
    assert rows[("MATH", "2026-03-07")]["bookings_7d_avg"] == pytest.approx(4 / 7, rel=1e-15)
    assert rows[("MATH", "2026-03-08")]["bookings_7d_avg"] == pytest.approx(1 / 7, rel=1e-15)
    assert rows[("MATH", "2026-03-09")]["bookings_7d_avg"] == 0.0
    assert rows[("MATH", "2026-03-10")]["bookings_7d_avg"] == pytest.approx(1 / 7, rel=1e-15)
    assert rows[("PHYS", "2026-03-05")]["bookings_7d_avg"] == pytest.approx(1 / 7, rel=1e-15)


def test_booking_dates_use_the_local_zone(tmp_path):
    write_log(str(tmp_path), D1, "x.jsonl.gz", [
        change("e-1", "a-1", seq(1), new_image=image("a-1", created_at="2026-03-02T05:30:00Z")),
        change("e-2", "a-2", seq(1), new_image=image("a-2", created_at="2026-03-04T06:30:00Z")),
    ])
    rows = compute_tables(str(tmp_path), timezone="America/Chicago")["booking_trends_daily"]
    assert [(r["date"].isoformat(), r["bookings_created"]) for r in rows] == [
        ("2026-03-01", 1), ("2026-03-02", 0), ("2026-03-03", 0), ("2026-03-04", 1)]


# --- scope ----------------------------------------------------------------------------------------

def test_as_of_limits_every_table_and_quarantine(tmp_path):
    root = str(tmp_path)
    write_log(root, D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1)), "{bad"])
    write_log(root, D2, "x.jsonl.gz", [change("e-2", "a-2", seq(1)), "{bad"])
    write_log(root, D3, "x.jsonl.gz", [change("e-3", "a-3", seq(1))])
    tables = compute_tables(root, as_of=dt.date(2026, 3, 2))
    assert ids(tables["appointments"]) == ["a-1", "a-2"]
    assert len(tables["quarantine"]) == 2
    assert compute_tables(root, as_of=dt.date(2026, 2, 28)) == {
        "appointments": [], "advisor_daily_load": [], "booking_trends_daily": [], "quarantine": []}


def test_every_table_has_exactly_the_contract_columns(tmp_path):
    write_advisors(str(tmp_path), [["adv-1", "A", "MATH", "300"]])
    write_log(str(tmp_path), D1, "x.jsonl.gz", [change("e-1", "a-1", seq(1)), "{bad"])
    for name, rows in compute_tables(str(tmp_path)).items():
        assert rows and all(tuple(row) == TABLE_COLUMNS[name] for row in rows), name


def test_a_line_marked_unconvertible_is_quarantined_whole_with_its_own_reason(tmp_path):
    # GIVEN a sink line for a record it could not convert, once with every field valid and once with none
    marked = change("e-1", "a-bad-type", seq(2), unconvertible={"error": "unknown DynamoDB type 'X'", "stream_record": {}})
    bare = {"event_id": None, "keys": None, "unconvertible": {"error": "no keys", "stream_record": {}}}
    write_log(str(tmp_path), D1, "a.jsonl.gz", [change("e-0", "a-bad-type", seq(1)), marked, bare])
    # WHEN the reference computes the tables
    tables = compute_tables(str(tmp_path))
    # THEN both lines are quarantined as unconvertible_record, and the earlier valid change stands
    got = sorted((row["appointment_id"] or "", row["reason"]) for row in tables["quarantine"])
    assert got == [("", "unconvertible_record"), ("a-bad-type", "unconvertible_record")]
    assert ids(tables["appointments"]) == ["a-bad-type"]
