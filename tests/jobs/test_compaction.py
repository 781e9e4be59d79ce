"""Contract rules 2-5 on small hand-built change records."""
import datetime as dt
import json

import pytest
from chispa import assert_df_equality

from jobs.compaction import CHANGE_COLUMNS, check_images, latest_changes, split_checked

CHANGE_SCHEMA = (
    "appointment_id string, event_id string, event_name string, sequence_number string, "
    "approximate_creation_time timestamp, new_image string, image_is_string boolean, ingest_date date, source_file string"
)
T0 = dt.datetime(2026, 9, 1, 10, 0)


def image(appointment_id="a1", **overrides):
    item = {
        "appointment_id": appointment_id,
        "student_id": "s1",
        "advisor_id": "adv1",
        "department": "Math",
        "start_time": "2026-09-03T15:00:00Z",
        "duration_minutes": 30,
        "status": "BOOKED",
        "created_at": "2026-09-01T10:00:00+02:00",
        "updated_at": "2026-09-01T10:00:00Z",
        "channel": "web",
    }
    item.update(overrides)
    return json.dumps({k: v for k, v in item.items() if v is not ...}, separators=(",", ":"))


def change(event_id, seq, name="MODIFY", appointment_id="a1", act=T0, img=..., day=1, file="f1", is_string=False):
    if img is ...:
        img = None if name == "REMOVE" else image(appointment_id)
    return (appointment_id, event_id, name, seq, act, img, is_string, dt.date(2026, 9, day), f"/in/{file}")


def validate_images(winners_df):
    return split_checked(check_images(winners_df))


def winners(spark, *rows):
    return latest_changes(spark.createDataFrame(list(rows), CHANGE_SCHEMA))


def winner_ids(spark, *rows):
    return {r["appointment_id"]: r["event_id"] for r in winners(spark, *rows).collect()}


def test_sequence_numbers_compare_as_integers_not_strings(spark):
    # "9"*21 > "1"+"0"*21 as strings, but the 22-digit number is the greater one.
    assert winner_ids(spark, change("old", "9" * 21, "INSERT"), change("new", "1" + "0" * 21)) == {"a1": "new"}
    assert winner_ids(spark, change("old", "0000123"), change("new", "124")) == {"a1": "new"}
    assert winner_ids(spark, change("a", "5" * 40), change("b", "9" * 39)) == {"a1": "a"}


def test_ties_break_by_creation_instant_then_event_id(spark):
    later = T0 + dt.timedelta(seconds=1)
    assert winner_ids(spark, change("x", "000500", act=later), change("y", "500")) == {"a1": "x"}
    assert winner_ids(spark, change("x", "500"), change("y", "500")) == {"a1": "y"}


def test_duplicates_are_one_change_and_the_earliest_copy_is_kept(spark):
    from pyspark.sql import Observation

    rows = [change("e1", "7", day=3, file="late"), change("e1", "7", day=2, file="b"), change("e1", "7", day=2, file="a")]
    rows.append(change("e2", "8", appointment_id="a2"))
    duplicates = Observation("duplicates")
    result = latest_changes(spark.createDataFrame(rows, CHANGE_SCHEMA), duplicates).filter("appointment_id = 'a1'")
    assert result.count() == 1
    assert duplicates.get == {"duplicates": 2}  # counted by the compaction itself: three copies of e1, one of e2
    row = result.first()
    assert (row["ingest_date"], row["source_file"]) == (dt.date(2026, 9, 2), "/in/a")


def test_remove_then_late_older_insert_does_not_resurrect(spark):
    rows = [change("e2", "200", "REMOVE"), change("e1", "100", "INSERT", day=5)]
    result = winners(spark, *rows)
    assert [r["event_name"] for r in result.collect()] == ["REMOVE"]
    appointments, rejects = validate_images(result)
    assert appointments.count() == 0 and rejects.count() == 0


def test_newer_insert_after_remove_brings_the_appointment_back(spark):
    rows = [change("e1", "100", "INSERT"), change("e2", "200", "REMOVE"), change("e3", "300", "INSERT")]
    appointments, _ = validate_images(winners(spark, *rows))
    assert [r["appointment_id"] for r in appointments.collect()] == ["a1"]


def test_state_plus_new_changes_equals_replaying_everything(spark):
    everything = [
        change("e1", "100", "INSERT"),
        change("e2", "9" * 21),
        change("e3", "1" + "0" * 21, "REMOVE"),
        change("e4", "5", "INSERT", appointment_id="a2"),
        change("e5", "6", appointment_id="a2", day=4),
        change("e5", "6", appointment_id="a2", day=2),
    ]
    full = winners(spark, *everything)
    first = winners(spark, *everything[:2], everything[4])
    chained = latest_changes(first.select(*CHANGE_COLUMNS).unionByName(spark.createDataFrame(everything[2:], CHANGE_SCHEMA)))
    assert_df_equality(chained, full, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize(
    "img, reason",
    [
        (None, "missing_image"),
        ("[1,2]", "bad_image"),
        (image(appointment_id="other"), "bad_appointment_id"),
        (image(student_id=...), "bad_student_id"),
        (image(student_id=""), "bad_student_id"),
        (image(student_id=42), "bad_student_id"),
        (image(advisor_id=""), "bad_advisor_id"),
        (image(department=None), "bad_department"),
        (image(status="booked"), "bad_status"),
        (image(status="PENDING"), "bad_status"),
        (image(duration_minutes=30.0), "bad_duration_minutes"),
        (image(duration_minutes="30"), "bad_duration_minutes"),
        (image(duration_minutes=4), "bad_duration_minutes"),
        (image(duration_minutes=481), "bad_duration_minutes"),
        (image(duration_minutes=...), "bad_duration_minutes"),
        (image(start_time="2026-09-03T15:00:00"), "bad_start_time"),
        (image(created_at="2026-02-30T10:00:00Z"), "bad_created_at"),
        (image(updated_at=None), "bad_updated_at"),
        (image(channel=3), "bad_channel"),
    ],
)
def test_invalid_final_image_goes_to_quarantine(spark, img, reason):
    result = winners(spark, change("e1", "100", "INSERT"), change("e2", "200", img=img, day=2, file="g"))
    appointments, rejects = validate_images(result)
    assert appointments.count() == 0
    rows = rejects.collect()
    assert [(r["reason"], r["appointment_id"], r["source_file"], r["ingest_date"]) for r in rows] == [
        (reason, "a1", "/in/g", dt.date(2026, 9, 2))
    ]
    assert rows[0]["record"] == (img if img is not None else "null")


def test_image_sent_as_a_json_string_is_rejected_and_quoted_again(spark):
    # from_json hands a string image over unquoted; the quarantine record must be JSON text again.
    _, rejects = validate_images(winners(spark, change("e1", "1", "INSERT", img='not an "object"', is_string=True)))
    assert [(r["reason"], r["record"]) for r in rejects.collect()] == [("bad_image", '"not an \\"object\\""')]


def test_newer_valid_change_takes_the_appointment_out_of_quarantine(spark):
    rows = [change("e1", "100", "INSERT", img=image(status="booked")), change("e2", "200", img=image(status="CANCELLED"))]
    appointments, rejects = validate_images(winners(spark, *rows))
    assert rejects.count() == 0
    assert [r["status"] for r in appointments.collect()] == ["CANCELLED"]


def test_valid_image_is_typed(spark):
    img = image(channel=..., start_time="2026-09-03T10:00:00.1234567-05:00", extra={"ignored": True})
    appointments, _ = validate_images(winners(spark, change("e1", "1", "INSERT", img=img)))
    row = appointments.first()
    assert row["channel"] is None
    assert row["start_time"] == dt.datetime(2026, 9, 3, 15, 0, 0, 123456)
    assert row["created_at"] == dt.datetime(2026, 9, 1, 8, 0)
    assert row["duration_minutes"] == 30
