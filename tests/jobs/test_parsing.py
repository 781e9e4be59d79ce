"""Contract rule 1 and the timestamp format, on small hand-built DataFrames."""
import datetime as dt
import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.parsing import parse_lines, parse_timestamp, rejected_lines, valid_changes

UTC = dt.timezone.utc


def line(**overrides):
    record = {
        "event_id": "e1",
        "event_name": "INSERT",
        "sequence_number": "100000000000000000001",
        "approximate_creation_time": "2026-09-01T10:00:00Z",
        "table": "appointments",
        "keys": {"appointment_id": "a1"},
        "new_image": {"appointment_id": "a1"},
        "old_image": None,
    }
    record.update(overrides)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def compact(**overrides):
    """A line as the stream sink writes it: no spaces after separators."""
    return json.dumps(json.loads(line(**overrides)), separators=(",", ":"))


def parse(spark, *values):
    lines = spark.createDataFrame(
        [(v, "/in/appointments/ingest_date=2026-09-01/f.jsonl.gz", dt.date(2026, 9, 1)) for v in values],
        "value string, source_file string, ingest_date date",
    )
    return parse_lines(lines)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-09-01T10:00:00Z", dt.datetime(2026, 9, 1, 10, 0, tzinfo=UTC)),
        ("2026-09-01T10:00:00.5+05:30", dt.datetime(2026, 9, 1, 4, 30, 0, 500000, tzinfo=UTC)),
        ("2026-09-01T10:00:00.123456789-04:00", dt.datetime(2026, 9, 1, 14, 0, 0, 123456, tzinfo=UTC)),
        ("2026-09-01T23:30:00.1234567+00:00", dt.datetime(2026, 9, 1, 23, 30, 0, 123456, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", dt.datetime(2024, 2, 29, tzinfo=UTC)),
        ("2026-02-30T10:00:00Z", None),
        ("2026-09-01T10:00:00", None),
        ("2026-09-01 10:00:00Z", None),
        ("2026-09-01T10:00Z", None),
        ("2026-09-01T10:00:00+0530", None),
        ("2026-09-01T10:00:00.Z", None),
        ("2026-09-01T10:00:00.1234567890Z", None),
        ("2026-09-01T25:00:00Z", None),
        ("2026-09-01t10:00:00z", None),
        ("", None),
        # impossible times and offsets in the right shape
        ("2026-02-28T24:00:00Z", None),
        ("2026-12-31T23:59:60Z", None),
        ("2026-09-01T09:60:00Z", None),
        ("2026-13-01T00:00:00Z", None),
        ("2026-09-01T10:00:00+24:00", None),
        ("2026-09-01T10:00:00-23:59", None),
        ("2026-09-01T10:00:00+05:60", None),
        ("2026-09-01T10:00:00+14:00", dt.datetime(2026, 8, 31, 20, 0, tzinfo=UTC)),
        ("2026-09-01T10:00:00+18:00", dt.datetime(2026, 8, 31, 16, 0, tzinfo=UTC)),
        ("2026-09-01T10:00:00.25-18:00", dt.datetime(2026, 9, 2, 4, 0, 0, 250000, tzinfo=UTC)),
        ("2026-09-01T10:00:00+18:01", None),
        ("2026-09-01T10:00:00-12:45", dt.datetime(2026, 9, 1, 22, 45, tzinfo=UTC)),
        ("1969-12-31T23:59:59.999999Z", dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-09-01T10:00:00.9999999Z", dt.datetime(2026, 9, 1, 10, 0, 0, 999999, tzinfo=UTC)),
    ],
)
def test_timestamp_format(spark, text, expected):
    row = spark.createDataFrame([(text,)], "t string").select(parse_timestamp(F.col("t")).alias("ts")).first()
    got = row["ts"]
    if expected is None:
        assert got is None
    else:
        # collected timestamps are naive, in the session zone (UTC)
        assert got.replace(tzinfo=UTC) == expected


@pytest.mark.parametrize(
    "value, reason",
    [
        ("not json", "invalid_json"),
        ('{"event_id": "e1", ', "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('"a string"', "invalid_json"),
        ("42", "invalid_json"),
        (line() + " garbage", "invalid_json"),
        ('{"event_id": "e1", "event_name": "INSERT"} {"x": 1}', "invalid_json"),
        ('{"event_id": "e1"}, {"x": 1}', "invalid_json"),
        ("null", "invalid_json"),
        ("[" + line() + "]", "invalid_json"),
        (line() + "}", "invalid_json"),
        (line(keys="a1"), "missing_appointment_id"),  # a field of the wrong type: still an object
        (line(event_id=...), "missing_event_id"),
        (line(event_id=""), "missing_event_id"),
        (line(event_id=None), "missing_event_id"),
        (line(event_name=None), "missing_event_name"),
        (line(sequence_number=""), "missing_sequence_number"),
        (line(approximate_creation_time=...), "missing_approximate_creation_time"),
        (line(keys={}), "missing_appointment_id"),
        (line(keys={"appointment_id": ""}), "missing_appointment_id"),
        (line(keys=...), "missing_appointment_id"),
        (line(event_name="UPSERT"), "unknown_event_name"),
        (line(event_name="insert"), "unknown_event_name"),
        (line(sequence_number=100000000000000000001), "bad_sequence_number"),
        (line(sequence_number="12a4"), "bad_sequence_number"),
        (line(sequence_number="-12"), "bad_sequence_number"),
        # The sink's compact spelling, which the cheap string test recognises, and a number spelled so.
        (compact(sequence_number=100000000000000000001), "bad_sequence_number"),
        (compact(sequence_number="12a4"), "bad_sequence_number"),
        (line(approximate_creation_time="2026-09-01 10:00:00Z"), "bad_approximate_creation_time"),
        (line(approximate_creation_time="2026-02-30T10:00:00Z"), "bad_approximate_creation_time"),
    ],
)
def test_rule1_rejects_with_reason(spark, value, reason):
    rejected = rejected_lines(parse(spark, value)).collect()
    assert [(r["reason"], r["record"]) for r in rejected] == [(reason, value)]


def test_valid_line_is_typed_and_blank_lines_are_ignored(spark):
    parsed = parse(spark, line(approximate_creation_time="2026-09-01T12:00:00.1234567+02:00"), "", "   ", "\t\r", compact(event_id="e2"))
    assert rejected_lines(parsed).count() == 0
    assert sorted(r["event_id"] for r in valid_changes(parsed).collect()) == ["e1", "e2"]
    row = valid_changes(parsed).filter("event_id = 'e1'").first()
    assert row["event_id"] == "e1" and row["appointment_id"] == "a1"
    assert row["sequence_number"] == "100000000000000000001"
    assert row["approximate_creation_time"] == dt.datetime(2026, 9, 1, 10, 0, 0, 123456)
    assert json.loads(row["new_image"]) == {"appointment_id": "a1"}
    assert row["image_is_string"] is False


def test_a_rejected_line_twice_is_quarantined_twice(spark):
    rejected = rejected_lines(parse(spark, "oops", "oops"))
    expected = spark.createDataFrame(
        [("invalid_json", "oops", "/in/appointments/ingest_date=2026-09-01/f.jsonl.gz", None, dt.date(2026, 9, 1))] * 2,
        "reason string, record string, source_file string, appointment_id string, ingest_date date",
    )
    assert_df_equality(rejected, expected, ignore_nullable=True)


def test_image_given_as_a_json_string_is_flagged(spark):
    row = valid_changes(parse(spark, line(new_image=json.dumps({"appointment_id": "a1"})))).first()
    assert row["image_is_string"] is True


@pytest.mark.parametrize("spell", [line, compact], ids=["spaced", "compact"])
def test_image_type_is_read_from_the_line_in_either_spelling(spark, spell):
    as_object = spell(event_id="e1", new_image={"appointment_id": "a1", "note": "x"})
    as_string = spell(event_id="e2", new_image=json.dumps({"appointment_id": "a1"}))
    flags = {r["event_id"]: r["image_is_string"] for r in valid_changes(parse(spark, as_object, as_string)).collect()}
    assert flags == {"e1": False, "e2": True}


def test_an_item_attribute_called_new_image_does_not_make_the_image_a_string(spark):
    # In the compact spelling the image's own key settles its type, whatever the item's attributes are called.
    row = valid_changes(parse(spark, compact(new_image={"appointment_id": "a1", "new_image": "x"}))).first()
    assert row["image_is_string"] is False
