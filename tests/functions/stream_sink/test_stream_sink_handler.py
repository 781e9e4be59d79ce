"""The Lambda handler against moto over HTTP: layout, idempotent retries, partial batch failures, config."""
from __future__ import annotations

import calendar
import json
from collections import Counter

import boto3
import pytest
from stream_sink_support import lines_of, read_change_log, stream_record

from functions.stream_sink import handler as sink

DAY1, DAY2, DAY3 = "2026-01-05", "2026-01-06", "2026-01-07"
SEQ = 300000000000000000000  # 21 digits, as DynamoDB's


def at(day: str, time: str) -> float:
    return calendar.timegm(tuple(map(int, day.split("-"))) + tuple(map(int, time.split(":"))) + (0, 0, 0)) + 0.0


def item(key: str, status: str = "BOOKED") -> dict:
    return {
        "appointment_id": key,
        "student_id": "s-" + key,
        "advisor_id": "adv-1",
        "department": "Physics",
        "start_time": "2026-01-08T15:00:00Z",
        "duration_minutes": 30,
        "status": status,
        "created_at": "2026-01-05T08:00:00Z",
        "updated_at": "2026-01-05T08:00:00Z",
        "channel": "web",
    }


def batch(days_and_times) -> dict:
    return {
        "Records": [
            stream_record(SEQ + n, "INSERT", f"a-{n}", at(day, time), new=item(f"a-{n}"))
            for n, (day, time) in enumerate(days_and_times)
        ]
    }


def expected_line(n: int, day: str, time: str) -> dict:
    """The contract line of record n of `batch`, written out from the contract (not by the converter)."""
    return {
        "event_id": f"evt-{SEQ + n}",
        "event_name": "INSERT",
        "sequence_number": str(SEQ + n),
        "approximate_creation_time": f"{day}T{time}Z",
        "table": "appointments",
        "keys": {"appointment_id": f"a-{n}"},
        "new_image": item(f"a-{n}"),
        "old_image": None,
    }


def log_lines(capsys) -> list:
    return [json.loads(text) for text in capsys.readouterr().out.splitlines() if text.startswith("{")]


def test_batch_is_filed_per_utc_date_under_keys_named_by_its_sequence_range(raw_bucket, capsys):
    times = [(DAY1, "23:59:58"), (DAY1, "23:59:59"), (DAY2, "00:00:00"), (DAY2, "00:00:01"), (DAY2, "09:30:00")]
    event = batch(times)

    assert sink.handler(event, None, clock=lambda: at(DAY2, "09:30:10")) == {"batchItemFailures": []}

    objects = read_change_log(boto3.client("s3"), raw_bucket)
    folder = "raw/appointments/ingest_date={}/appointments-2026-01-05T080000.000/"
    assert sorted(objects) == [
        folder.format(DAY1) + f"{SEQ:040d}-{SEQ + 1:040d}.jsonl.gz",
        folder.format(DAY2) + f"{SEQ + 2:040d}-{SEQ + 4:040d}.jsonl.gz",
    ]
    assert lines_of(objects) == [expected_line(n, day, time) for n, (day, time) in enumerate(times)]
    (log,) = log_lines(capsys)
    assert log["event"] == "stream_sink_batch"
    assert (log["records"], log["objects"], log["failures"], log["unconvertible"]) == (5, 2, 0, 0)
    assert log["bytes"] == sum(len(body) for body in objects.values())
    # The oldest record (DAY1 23:59:58) is 9 h 30 min 12 s older than the injected clock.
    assert log["oldest_record_age_seconds"] == 9 * 3600 + 30 * 60 + 12


def test_a_retried_batch_rewrites_the_same_objects_with_the_same_bytes(raw_bucket):
    event = batch([(DAY1, "10:00:00"), (DAY2, "10:00:00"), (DAY2, "11:00:00")])
    s3 = boto3.client("s3")
    sink.handler(event, None)
    first = read_change_log(s3, raw_bucket)
    sink.handler(json.loads(json.dumps(event)), None)
    assert read_change_log(s3, raw_bucket) == first


def test_failed_write_names_the_first_record_not_stored_and_the_retry_stores_each_record_once(fault_proxy, capsys):
    event = batch([(DAY1, "22:00:00"), (DAY1, "23:00:00"), (DAY2, "01:00:00"), (DAY2, "02:00:00"), (DAY3, "03:00:00"), (DAY3, "04:00:00")])
    fault_proxy.deny = f"ingest_date={DAY2}"

    response = sink.handler(event, None)

    assert response == {"batchItemFailures": [{"itemIdentifier": str(SEQ + 2)}]}
    assert len(fault_proxy.denied) == 1
    s3 = boto3.client("s3")
    stored = lines_of(read_change_log(s3, "advising-raw"))
    assert [line["event_id"] for line in stored] == ["evt-" + str(SEQ), "evt-" + str(SEQ + 1)]
    (log,) = log_lines(capsys)
    assert (log["failures"], log["objects"], log["retry_from_sequence_number"]) == (1, 1, str(SEQ + 2))
    assert "AccessDenied" in log["error"]

    # Lambda redelivers from the reported record on; the fault is gone by then.
    fault_proxy.deny = None
    retry = {"Records": [r for r in event["Records"] if int(r["dynamodb"]["SequenceNumber"]) >= SEQ + 2]}
    assert sink.handler(retry, None) == {"batchItemFailures": []}

    counts = Counter(line["event_id"] for line in lines_of(read_change_log(s3, "advising-raw")))
    assert counts == Counter(r["eventID"] for r in event["Records"])
    assert set(counts.values()) == {1}


def test_a_record_of_an_earlier_group_after_the_failed_group_is_redelivered_and_deduplicates(fault_proxy):
    # A late record of DAY1 comes after the first DAY2 record in the batch: the DAY1 group is stored
    # whole, the retry from the DAY2 record stores that late record again; event_id makes it one change.
    event = batch([(DAY1, "23:59:59"), (DAY2, "00:00:00"), (DAY1, "23:59:58"), (DAY3, "00:00:00")])
    fault_proxy.deny = f"ingest_date={DAY2}"
    response = sink.handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": str(SEQ + 1)}]}

    fault_proxy.deny = None
    sink.handler({"Records": event["Records"][1:]}, None)
    stored = lines_of(read_change_log(boto3.client("s3"), "advising-raw"))
    by_id = {}
    for line in stored:
        assert by_id.setdefault(line["event_id"], line) == line  # copies of one change are identical
    assert sorted(by_id) == sorted(r["eventID"] for r in event["Records"])
    assert Counter(line["event_id"] for line in stored)["evt-" + str(SEQ + 2)] == 2


def test_a_missing_bucket_fails_the_batch_from_its_first_record(raw_bucket, monkeypatch):
    monkeypatch.setenv("RAW_BUCKET", "no-such-bucket")
    event = batch([(DAY1, "10:00:00"), (DAY2, "10:00:00")])
    assert sink.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": str(SEQ)}]}


def test_missing_bucket_setting_raises_a_clear_error(aws_env, monkeypatch):
    monkeypatch.delenv("RAW_BUCKET", raising=False)
    with pytest.raises(sink.ConfigError, match="RAW_BUCKET is not set"):
        sink.handler(batch([(DAY1, "10:00:00")]), None)


def test_empty_batch_writes_nothing(raw_bucket):
    assert sink.handler({"Records": []}, None) == {"batchItemFailures": []}
    assert read_change_log(boto3.client("s3"), raw_bucket) == {}


def test_config_reads_prefix_and_bucket_from_the_environment():
    assert sink.SinkConfig.from_env({"RAW_BUCKET": "b", "RAW_PREFIX": "/raw"}) == sink.SinkConfig("b", "raw/")
    assert sink.SinkConfig.from_env({"RAW_BUCKET": "b"}) == sink.SinkConfig("b", "")
    with pytest.raises(sink.ConfigError):
        sink.SinkConfig.from_env({"RAW_BUCKET": "  "})


def test_unconvertible_records_are_stored_marked_and_logged_without_failing_the_batch(raw_bucket, capsys):
    # GIVEN a batch where one record has no keys and one an attribute of a type nobody expected
    event = batch([(DAY1, "10:00:00"), (DAY1, "10:00:01"), (DAY1, "10:00:02"), (DAY1, "10:00:03")])
    del event["Records"][1]["dynamodb"]["Keys"]
    event["Records"][2]["dynamodb"]["NewImage"]["rating"] = {"X": "5"}

    # WHEN the sink handles it
    response = sink.handler(event, None, clock=lambda: at(DAY1, "10:00:13"))

    # THEN nothing fails: every record is in the log, the two bad ones as marked lines holding the record
    assert response == {"batchItemFailures": []}
    stored = lines_of(read_change_log(boto3.client("s3"), raw_bucket))
    assert [line["event_id"] for line in stored] == [f"evt-{SEQ + n}" for n in range(4)]
    assert stored[0] == expected_line(0, DAY1, "10:00:00") and stored[3] == expected_line(3, DAY1, "10:00:03")
    assert [("unconvertible" in line) for line in stored] == [False, True, True, False]
    assert stored[1]["unconvertible"]["stream_record"] == event["Records"][1]
    assert stored[2]["unconvertible"]["stream_record"] == event["Records"][2]
    assert stored[2]["keys"] == {"appointment_id": "a-2"}
    # AND the batch's one log line has the same shape, naming each bad record's eventID and error
    (log,) = log_lines(capsys)
    assert (log["records"], log["objects"], log["failures"], log["unconvertible"]) == (4, 1, 0, 2)
    assert log["oldest_record_age_seconds"] == 13
    assert [(r["event_id"], r["sequence_number"]) for r in log["unconvertible_records"]] == [
        (f"evt-{SEQ + 1}", str(SEQ + 1)), (f"evt-{SEQ + 2}", str(SEQ + 2))
    ]
    assert "Keys" in log["unconvertible_records"][0]["error"]
    assert "unknown DynamoDB type 'X'" in log["unconvertible_records"][1]["error"]


def test_a_record_without_time_is_filed_beside_its_neighbour_and_a_retry_rewrites_the_same_bytes(raw_bucket):
    # GIVEN a batch whose second record has no readable time (real streams always send one)
    event = batch([(DAY1, "23:59:59"), (DAY2, "00:00:00"), (DAY2, "00:00:01")])
    event["Records"][1]["dynamodb"]["ApproximateCreationDateTime"] = "later"
    s3 = boto3.client("s3")
    # WHEN it is handled twice, on different days
    assert sink.handler(event, None, clock=lambda: at(DAY2, "01:00:00")) == {"batchItemFailures": []}
    first = read_change_log(s3, raw_bucket)
    assert sink.handler(event, None, clock=lambda: at(DAY3, "01:00:00")) == {"batchItemFailures": []}
    # THEN it went into the previous record's date, the same objects both times
    assert read_change_log(s3, raw_bucket) == first
    by_date = {key.split("ingest_date=")[1][:10]: [line["event_id"] for line in lines_of({key: body})] for key, body in first.items()}
    assert by_date == {DAY1: [f"evt-{SEQ}", f"evt-{SEQ + 1}"], DAY2: [f"evt-{SEQ + 2}"]}


def test_a_failed_write_after_an_unconvertible_record_still_names_the_first_record_not_stored(fault_proxy):
    event = batch([(DAY1, "10:00:00"), (DAY2, "10:00:00"), (DAY2, "10:00:01")])
    event["Records"][1]["dynamodb"]["NewImage"]["rating"] = {"X": "5"}
    fault_proxy.deny = f"ingest_date={DAY2}"
    assert sink.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": str(SEQ + 1)}]}
