"""The test builders against recorded AWS payloads (events/): the same keys and JSON types, and the
recorded event itself goes through the handler's conversion."""
from __future__ import annotations

import json

from stream_sink_support import STREAM_ARN, batch_info_message, recorded_event, stream_record

from advising.sink_redrive import parse_message
from functions.stream_sink import records


def shape(value):
    """Key names and JSON types, recursively (lists by their first member)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def test_the_record_builder_has_the_shape_of_a_recorded_lambda_event():
    recorded = recorded_event("dynamodb-stream-event")["Records"][0]
    built = stream_record(10**21, "MODIFY", "a-1", 1480452540, new={"appointment_id": "a-1"}, old={"appointment_id": "a-1"})
    assert set(built) == set(recorded)
    assert set(built["dynamodb"]) == set(recorded["dynamodb"])
    for name in ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "eventSourceARN"):
        assert shape(built[name]) == shape(recorded[name]) == "str"
    for name in ("ApproximateCreationDateTime", "SequenceNumber", "SizeBytes", "StreamViewType"):
        assert shape(built["dynamodb"][name]) == shape(recorded["dynamodb"][name])
    assert shape(built["dynamodb"]["Keys"]) == {"appointment_id": {"S": "str"}}
    assert shape(recorded["dynamodb"]["Keys"]) == {"id": {"S": "str"}}
    assert built["eventSourceARN"] == STREAM_ARN


def test_recorded_lambda_events_convert_once_keyed_like_appointments():
    recorded = recorded_event("dynamodb-stream-event")["Records"]
    # As recorded, the tables are keyed by `id` / `Id`, not appointment_id: kept, marked, never dropped.
    first, second = (records.convert(record) for record in recorded)
    assert first["unconvertible"]["error"] == second["unconvertible"]["error"] == "Keys has no string appointment_id"
    assert first["unconvertible"]["stream_record"] == recorded[0]
    assert (first["approximate_creation_time"], second["approximate_creation_time"]) == ("2016-11-29T20:49:00Z", "2023-09-06T10:45:55Z")
    assert (first["sequence_number"], first["table"]) == ("1100000000000136137170", "blog-post")
    # Keyed like the appointments table, the same record is a contract line.
    keyed = dict(recorded[0], dynamodb=dict(recorded[0]["dynamodb"], Keys={"appointment_id": {"S": "1"}}))
    line = records.convert(keyed)
    assert "unconvertible" not in line and line["keys"] == {"appointment_id": "1"}
    assert (line["new_image"], line["old_image"]) == ({"id": "1", "key": "updated"}, {"id": "1", "key": "value"})


def test_the_failure_message_builder_has_the_shape_of_the_recorded_one():
    recorded = recorded_event("ddb-stream-on-failure")
    built = json.loads(batch_info_message(STREAM_ARN, "shardId-1", "11", "19", 9))
    assert shape(built) == shape(recorded)
    batch = parse_message({"MessageId": "m-1", "ReceiptHandle": "r", "Body": json.dumps(recorded)})
    assert (batch.stream_arn, batch.shard_id, batch.first, batch.last) == (
        "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388",
        "shardId-00000001573689847184-864758bb",
        "800000000003126276362",
        "800000000003126276362",
    )
