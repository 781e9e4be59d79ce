"""`advising sink redrive` over moto (DynamoDB + Streams, SQS, S3): the batches the event source mapping
gave up on are read back from the stream and stored once, with the handler's keys."""
from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest
from stream_sink_support import batch_info_message, lambda_records, lines_of, read_change_log

from advising.cli import main as advising
from functions.stream_sink import handler as sink

TABLE = "appointments"


def make_table_with_changes(dynamodb) -> str:
    arn = dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "appointment_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "appointment_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    for n in range(5):
        dynamodb.put_item(TableName=TABLE, Item={
            "appointment_id": {"S": f"a-{n}"}, "photo": {"B": bytes([n, 255])}, "tags": {"BS": [b"\x01", bytes([n + 2])]},
            "scores": {"NS": ["1", "2.5"]}, "channel": {"NULL": True},
        })
    return arn


@pytest.fixture
def queue(aws_env) -> str:
    return boto3.client("sqs").create_queue(QueueName="sink-failures")["QueueUrl"]


def queued(queue_url) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def failed_batch(fault_proxy, aws_env):
    """GIVEN a batch the sink could not store (S3 refused it) until the mapping gave up and sent its range."""
    arn = make_table_with_changes(boto3.client("dynamodb"))
    records = lambda_records(aws_env, arn)
    fault_proxy.deny = "appointments/ingest_date="
    assert sink.handler({"Records": records}, None) == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    fault_proxy.deny = None
    shard = boto3.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    first, last = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
    return records, batch_info_message(arn, shard, first, last, len(records))


def test_a_redrive_stores_the_failed_batch_once_and_a_second_changes_nothing(fault_proxy, aws_env, queue, capsys):
    records, message = failed_batch(fault_proxy, aws_env)
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    sqs.send_message(QueueUrl=queue, MessageBody=message)
    assert read_change_log(s3, "advising-raw") == {}
    argv = ["sink", "redrive", "--queue-url", queue, "--raw", "s3://advising-raw/raw/"]

    # WHEN the operator redrives
    assert advising(argv) == 0

    # THEN every record of the range is stored once, under the keys the handler would have used, and the
    # message is gone
    stored = read_change_log(s3, "advising-raw")
    lines = lines_of(stored)
    assert Counter(line["event_id"] for line in lines) == Counter(r["eventID"] for r in records)
    assert lines[0]["new_image"]["photo"] == "AP8=" and lines[0]["new_image"]["tags"] == ["AQ==", "Ag=="]
    assert lines[0]["new_image"]["scores"] == [1, 2.5] and lines[0]["new_image"]["channel"] is None
    assert queued(queue) == 0
    assert "5 records in 1 objects" in capsys.readouterr().out
    # The same batch stored by a late success of the handler is the same object with the same bytes.
    assert sink.handler({"Records": records}, None) == {"batchItemFailures": []}
    assert read_change_log(s3, "advising-raw") == stored

    # WHEN it runs again, and even when the message is delivered twice
    assert advising(argv) == 0
    sqs.send_message(QueueUrl=queue, MessageBody=message)
    assert advising(argv) == 0
    # THEN nothing changes
    assert read_change_log(s3, "advising-raw") == stored
    assert queued(queue) == 0


def test_a_dry_run_writes_and_deletes_nothing(fault_proxy, aws_env, queue, capsys):
    _, message = failed_batch(fault_proxy, aws_env)
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=message)
    assert advising(["sink", "redrive", "--queue-url", queue, "--raw", "s3://advising-raw/raw", "--dry-run"]) == 0
    assert "would write 5 records in 1 objects" in capsys.readouterr().out
    assert read_change_log(boto3.client("s3"), "advising-raw") == {}
    assert queued(queue) == 1


def test_a_range_past_retention_is_one_line_pointing_at_reconcile_and_the_message_stays(fault_proxy, aws_env, queue, capsys):
    _, message = failed_batch(fault_proxy, aws_env)
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=message)
    fault_proxy.refuse = ("DynamoDBStreams_20120810.GetShardIterator", "TrimmedDataAccessException")

    assert advising(["sink", "redrive", "--queue-url", queue, "--raw", "s3://advising-raw/raw"]) == 1

    out = capsys.readouterr().out.splitlines()
    (gone,) = [line for line in out if "past the stream's 24-hour retention" in line]
    assert "advising reconcile" in gone and "TrimmedDataAccessException" in gone
    assert read_change_log(boto3.client("s3"), "advising-raw") == {}
    assert queued(queue) == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"Records": []}),
        json.dumps({"DDBStreamBatchInfo": {"streamArn": "arn", "shardId": "s", "startSequenceNumber": "9", "endSequenceNumber": "1"}}),
    ],
    ids=["not-json", "not-a-batch-record", "range-backwards"],
)
def test_a_message_that_is_not_a_stream_batch_record_is_one_line_exit_2_and_nothing_is_deleted(fault_proxy, aws_env, queue, capsys, body):
    _, message = failed_batch(fault_proxy, aws_env)
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody=message)
    sqs.send_message(QueueUrl=queue, MessageBody=body)

    assert advising(["sink", "redrive", "--queue-url", queue, "--raw", "s3://advising-raw/raw"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("advising sink: error: message ") and "not a stream batch record" in err
    assert read_change_log(boto3.client("s3"), "advising-raw") == {}
    # Both messages are back on the queue at once (visibility released), none deleted.
    assert len(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--queue-url", "{endpoint}/123456789012/no-such-queue", "--raw", "s3://advising-raw/raw"], "--queue-url: no such queue"),
        (["--queue-url", "q", "--raw", "/tmp/raw"], "--raw must be the sink's change-log root"),
    ],
    ids=["no-queue", "raw-not-s3"],
)
def test_misuse_is_one_line_and_exit_2(aws_env, capsys, argv, message):
    argv = [arg.format(endpoint=aws_env) for arg in argv]
    assert advising(["sink", "redrive", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
