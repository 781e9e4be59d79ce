"""Pure conversion of stream records to change-log lines (functions.stream_sink.records)."""
from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from boto3.dynamodb.types import Binary
from stream_sink_support import STREAM_ARN, stream_record

from functions.stream_sink import records

ITEM = {
    "appointment_id": "a-1",
    "student_id": "s-1",
    "advisor_id": "adv-1",
    "department": "Physics",
    "start_time": "2026-01-06T15:00:00Z",
    "duration_minutes": 30,
    "status": "BOOKED",
    "created_at": "2026-01-05T08:00:00Z",
    "updated_at": "2026-01-05T08:00:00Z",
    "channel": None,
    "rating": Decimal("4.5"),
    "tags": {"walk_in", "first_visit", "exam"},
    "slots": {Decimal("3"), Decimal("1"), Decimal("2.5")},
    "photo": Binary(b"\x00\xffpng"),
    "history": [{"at": Decimal("1"), "by": "web"}],
}


def test_plain_values_numbers_sets_and_binary():
    plain = records.from_dynamodb_json({name: {"N": "30"} for name in ["x"]})
    assert plain == {"x": 30} and type(plain["x"]) is int
    assert records.plain(Decimal("30.0")) == 30 and type(records.plain(Decimal("30.0"))) is int
    assert records.plain(Decimal("0.1")) == 0.1
    assert records.plain(Decimal("123456789012345678901234567890")) == 123456789012345678901234567890
    assert records.plain({"b", "a", "c"}) == ["a", "b", "c"]
    assert records.plain({Decimal("10"), Decimal("9"), Decimal("9.5")}) == [9, 9.5, 10]
    assert records.plain(Binary(b"\x00\xff")) == "AP8="
    assert records.from_dynamodb_json(None) is None


def test_stream_line_has_the_contract_fields_in_plain_json():
    record = stream_record(112233445566778899001, "MODIFY", "a-1", 1767600000.125, new=ITEM, old={**ITEM, "status": "CANCELLED"})
    line = records.stream_line(record)
    assert line == {
        "event_id": "evt-112233445566778899001",
        "event_name": "MODIFY",
        "sequence_number": "112233445566778899001",
        "approximate_creation_time": "2026-01-05T08:00:00.125000Z",
        "table": "appointments",
        "keys": {"appointment_id": "a-1"},
        "new_image": {
            **{k: v for k, v in ITEM.items() if k not in ("rating", "tags", "slots", "photo", "history")},
            "rating": 4.5,
            "tags": ["exam", "first_visit", "walk_in"],
            "slots": [1, 2.5, 3],
            "photo": "AP9wbmc=",
            "history": [{"at": 1, "by": "web"}],
        },
        "old_image": line["old_image"],
    }
    assert line["old_image"]["status"] == "CANCELLED"
    assert type(line["new_image"]["duration_minutes"]) is int
    # A JSON round trip keeps every type the contract names.
    assert json.loads(json.dumps(line)) == line


def test_remove_has_null_new_image_and_insert_null_old_image():
    removed = records.stream_line(stream_record(10**21, "REMOVE", "a-1", 1767600000, old=ITEM))
    inserted = records.stream_line(stream_record(10**21 + 1, "INSERT", "a-1", 1767600000, new=ITEM))
    assert removed["new_image"] is None and removed["old_image"]["appointment_id"] == "a-1"
    assert inserted["old_image"] is None
    assert removed["approximate_creation_time"] == "2026-01-05T08:00:00Z"


@pytest.mark.parametrize(
    "epoch, text",
    [
        (0, "1970-01-01T00:00:00Z"),
        (1767657599, "2026-01-05T23:59:59Z"),
        (1767657599.999, "2026-01-05T23:59:59.999000Z"),
        (1767657600.1, "2026-01-06T00:00:00.100000Z"),
        (Decimal("1767657600.000001"), "2026-01-06T00:00:00.000001Z"),
        ("1767657600", "2026-01-06T00:00:00Z"),
    ],
)
def test_creation_time_is_utc_in_the_contract_format(epoch, text):
    assert records.format_timestamp(records.epoch_to_datetime(epoch)) == text


@pytest.mark.parametrize("bad", [None, True, "soon", float("nan"), {"S": "1"}])
def test_creation_time_that_is_not_epoch_seconds_is_refused(bad):
    with pytest.raises(records.RecordError, match="ApproximateCreationDateTime"):
        records.epoch_to_datetime(bad)


def test_record_without_sequence_number_or_time_is_refused():
    record = stream_record(10**21, "INSERT", "a-1", 1767600000, new=ITEM)
    del record["dynamodb"]["ApproximateCreationDateTime"]
    with pytest.raises(records.RecordError, match="evt-.*ApproximateCreationDateTime"):
        records.stream_line(record)
    record = stream_record(10**21, "INSERT", "a-1", 1767600000, new=ITEM)
    record["dynamodb"]["SequenceNumber"] = "12a"
    with pytest.raises(records.RecordError, match="SequenceNumber"):
        records.stream_line(record)


def test_stream_folder_is_a_plain_name_and_table_comes_from_the_arn():
    folder = records.stream_folder(STREAM_ARN)
    assert folder == "appointments-2026-01-05T080000.000"
    assert "=" not in folder and ":" not in folder and "/" not in folder
    assert records.table_from_arn(STREAM_ARN) == "appointments"
    assert records.safe_name("_hidden=x:y") == "hiddenxy"
    with pytest.raises(records.RecordError):
        records.stream_folder("arn:aws:dynamodb:us-east-1:1:table/appointments")
    with pytest.raises(records.RecordError):
        records.table_from_arn("arn:aws:s3:::bucket")


def test_encoded_lines_are_deterministic_gzip_json_lines():
    lines = [records.stream_line(stream_record(10**21 + i, "INSERT", f"a-{i}", 1767600000 + i, new=ITEM)) for i in range(3)]
    first = records.encode_lines(lines)
    assert first == records.encode_lines(json.loads(json.dumps(lines)))
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    assert [json.loads(text) for text in gzip.decompress(first).decode().splitlines()] == lines


def test_object_key_layout_and_prefix_normalisation():
    assert [records.normalise_prefix(p) for p in ("", "/", "raw", "/raw/", "raw/x")] == ["", "", "raw/", "raw/", "raw/x/"]
    key = records.object_key("raw/", "2026-01-05", "appointments-x", "1-2")
    assert key == "raw/appointments/ingest_date=2026-01-05/appointments-x/1-2.jsonl.gz"
    assert records.padded_sequence("42") == "0" * 38 + "42"
    assert records.ingest_date({"approximate_creation_time": "2026-01-05T23:59:59.9Z"}) == "2026-01-05"
