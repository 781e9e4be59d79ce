"""Pure conversion of stream records to change-log lines (functions.stream_sink.records)."""
from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from stream_sink_support import STREAM_ARN, Attr, stream_record

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
    "photo": b"\x00\xffpng",
    "thumbs": {b"\x02", b"\x01"},
    "empty": Attr({"SS": []}),
    "flag": False,
    "history": [{"at": Decimal("1"), "by": "web"}],
}


@pytest.mark.parametrize(
    "attr, plain",
    [
        ({"S": "x"}, "x"),
        ({"N": "30"}, 30),
        ({"N": "30.0"}, 30),
        ({"N": "0.1"}, 0.1),
        ({"N": "-1E+2"}, -100),
        ({"N": "123456789012345678901234567890"}, 123456789012345678901234567890),
        ({"BOOL": True}, True),
        ({"NULL": True}, None),
        ({"B": "AP8="}, "AP8="),
        ({"B": b"\x00\xff"}, "AP8="),  # the boto3 API (redrive) hands bytes over
        ({"SS": ["b", "a", "c"]}, ["a", "b", "c"]),
        ({"NS": ["10", "9", "9.5"]}, [9, 9.5, 10]),
        ({"BS": ["Ag==", "AQ=="]}, ["AQ==", "Ag=="]),
        ({"SS": []}, []),
        ({"L": [{"N": "1"}, {"NULL": True}, {"M": {"k": {"B": "AQ=="}}}]}, [1, None, {"k": "AQ=="}]),
        ({"M": {}}, {}),
    ],
)
def test_every_dynamodb_type_as_lambda_delivers_it_becomes_plain_json(attr, plain):
    value = records.attribute_value(attr)
    assert value == plain and type(value) is type(plain)


@pytest.mark.parametrize(
    "attr, message",
    [
        ({"X": "1"}, "unknown DynamoDB type 'X'"),
        ({"N": "abc"}, "not a number"),
        ({"N": "NaN"}, "not a finite number"),
        ({"N": 30}, "N must be a string"),
        ({"B": "not base64!"}, "not base64"),
        ({"S": 5}, "S must be a string"),
        ({"S": "a", "N": "1"}, "one type tag"),
        ("x", "one type tag"),
        ({"NULL": False}, "NULL must be true"),
        ({"L": {"N": "1"}}, "L must be a list"),
        ({"M": [1]}, "must be a map"),
    ],
)
def test_a_malformed_attribute_value_is_refused_with_its_path(attr, message):
    with pytest.raises(records.RecordError, match="^image.a: .*" + message):
        records.image({"a": attr})


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
            **{k: v for k, v in ITEM.items() if k not in ("rating", "tags", "slots", "photo", "thumbs", "empty", "history")},
            "rating": 4.5,
            "tags": ["exam", "first_visit", "walk_in"],
            "slots": [1, 2.5, 3],
            "photo": "AP9wbmc=",
            "thumbs": ["AQ==", "Ag=="],
            "empty": [],
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
    with pytest.raises(records.RecordError, match="ApproximateCreationDateTime"):
        records.stream_line(record)
    record = stream_record(10**21, "INSERT", "a-1", 1767600000, new=ITEM)
    record["dynamodb"]["SequenceNumber"] = "12a"
    with pytest.raises(records.RecordError, match="SequenceNumber"):
        records.stream_line(record)


def _broken(change):
    record = stream_record(10**21 + 7, "MODIFY", "a-1", 1767600000.5, new=ITEM)
    change(record)
    return record


@pytest.mark.parametrize(
    "break_it, error, key, sequence, created",
    [
        (lambda r: r["dynamodb"].pop("Keys"), "Keys: must be a map", None, str(10**21 + 7), "2026-01-05T08:00:00.500000Z"),
        (lambda r: r["dynamodb"]["Keys"].update(appointment_id={"N": "1"}), "Keys has no string", None, str(10**21 + 7), "2026-01-05T08:00:00.500000Z"),
        (lambda r: r["dynamodb"]["NewImage"].update(rating={"X": "1"}), "NewImage.rating: unknown DynamoDB type", "a-1", str(10**21 + 7), "2026-01-05T08:00:00.500000Z"),
        (lambda r: r["dynamodb"].update(OldImage=[1]), "OldImage: must be a map", "a-1", str(10**21 + 7), "2026-01-05T08:00:00.500000Z"),
        (lambda r: r["dynamodb"].update(SequenceNumber=None, ApproximateCreationDateTime="soon"), "SequenceNumber", "a-1", None, None),
    ],
    ids=["no-keys", "numeric-key", "unknown-type", "image-not-a-map", "no-sequence-no-time"],
)
def test_an_unconvertible_record_becomes_a_marked_line_that_keeps_the_record(break_it, error, key, sequence, created):
    # GIVEN a stream record that cannot become a contract line
    record = _broken(break_it)
    # WHEN it is converted
    line = records.convert(record)
    # THEN it is still a line: what could be read, the error, and the whole record under the marker
    assert error in line["unconvertible"]["error"]
    assert line["unconvertible"]["stream_record"] == record
    assert (line["event_id"], line["event_name"], line["table"]) == ("evt-" + str(10**21 + 7), "MODIFY", "appointments")
    assert line["keys"] == (None if key is None else {"appointment_id": key})
    assert (line["sequence_number"], line["approximate_creation_time"]) == (sequence, created)
    assert line["new_image"] is None and line["old_image"] is None
    assert json.loads(json.dumps(line)) == line and records.is_unconvertible(line)


def test_a_record_that_is_not_an_object_is_kept_too():
    line = records.convert(["not", "a", "record"])
    assert line["unconvertible"]["stream_record"] == {"record": ["not", "a", "record"]}
    assert line["event_id"] is None and line["keys"] is None


def test_a_convertible_record_has_no_marker():
    assert not records.is_unconvertible(records.convert(stream_record(10**21, "INSERT", "a-1", 1767600000, new=ITEM)))


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
    assert records.object_name([{"sequence_number": None}, {"sequence_number": "5"}, {"sequence_number": "9"}]) == (
        "0" * 39 + "5-" + "0" * 39 + "9"
    )
    unsequenced = [{"sequence_number": None, "unconvertible": {"error": "x"}}]
    assert records.object_name(unsequenced) == records.object_name(json.loads(json.dumps(unsequenced)))
    assert records.object_name(unsequenced).startswith("unsequenced-")
    assert records.ingest_date({"approximate_creation_time": "2026-01-05T23:59:59.9Z"}) == "2026-01-05"
    assert records.ingest_date({"approximate_creation_time": None}) is None
