"""`advising sink redrive`: write the stream batches the sink's event source mapping gave up on.

Place in the flow: DynamoDB stream -> stream sink (Lambda) -> change log. When the mapping exhausts its
retries it sends only the batch's coordinates (`DDBStreamBatchInfo`: stream, shard, first and last sequence
number) to its SQS on-failure queue. This reads those messages, reads the records back from the stream
(they stay for 24 hours) and stores them through the handler's own `write_batch`, so the objects get the
handler's deterministic keys and bytes: a redrive and a late success write the same objects, and a redrive
run twice changes nothing. A message is deleted only once every record of its range is stored.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, List, Optional

from common.errors import UsageError
from functions.stream_sink import handler as sink
from functions.stream_sink import records

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# While a redrive works on a message, SQS hides it from other readers for this long.
VISIBILITY_SECONDS = 300


@dataclass(frozen=True)
class RedriveConfig:
    queue_url: str
    raw: sink.SinkConfig
    dry_run: bool = False
    wait_seconds: int = 1  # SQS long poll per receive: short polls can come back empty while messages wait

    @classmethod
    def from_args(cls, queue_url: str, raw_uri: str, dry_run: bool) -> "RedriveConfig":
        if not raw_uri.startswith("s3://") or not raw_uri[len("s3://"):].split("/", 1)[0]:
            raise UsageError(f"--raw must be the sink's change-log root, s3://BUCKET[/PREFIX], got {raw_uri!r}")
        bucket, _, prefix = raw_uri[len("s3://"):].partition("/")
        return cls(queue_url, sink.SinkConfig(bucket, records.normalise_prefix(prefix)), dry_run)


@dataclass(frozen=True)
class BatchRange:
    """One on-failure message: the range of one shard the mapping gave up on."""

    message_id: str
    receipt: str
    stream_arn: str
    shard_id: str
    first: str
    last: str

    def label(self) -> str:
        return f"{self.shard_id} {self.first}..{self.last}"


def parse_message(message: dict) -> BatchRange:
    """The range a message names, or a UsageError: only DDBStreamBatchInfo records are redriven."""
    try:
        info = json.loads(message["Body"])["DDBStreamBatchInfo"]
        fields = [info[name] for name in ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber")]
    except (ValueError, KeyError, TypeError):
        fields = None
    if not fields or not all(isinstance(value, str) and value for value in fields) or not (
        fields[2].isdigit() and fields[3].isdigit() and int(fields[2]) <= int(fields[3])
    ):
        raise UsageError(
            f"message {message.get('MessageId')} is not a stream batch record (DDBStreamBatchInfo with streamArn, "
            "shardId, startSequenceNumber <= endSequenceNumber); nothing was redriven or deleted"
        )
    return BatchRange(message["MessageId"], message["ReceiptHandle"], *fields)


def lambda_shape(value: Any) -> Any:
    """A record as boto3 parses it, back in the JSON form Lambda delivers: binary as base64 text, times as
    epoch seconds (exact, as a Decimal), so the handler's conversion gives the same line either way."""
    if isinstance(value, dict):
        return {key: lambda_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [lambda_shape(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        return Decimal((value - _EPOCH) // dt.timedelta(microseconds=1)) / Decimal(1_000_000)
    return value


class RangeGone(Exception):
    """The range can no longer be read from the stream (past its 24-hour retention, or the shard is gone)."""


def read_range(streams, batch: BatchRange) -> List[dict]:
    """The records of `batch`, Lambda-shaped, in stream order."""
    from botocore.exceptions import ClientError

    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch.stream_arn, ShardId=batch.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=batch.first
        )["ShardIterator"]
        found: List[dict] = []
        last = int(batch.last)
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            for record in page["Records"]:
                if int(record["dynamodb"]["SequenceNumber"]) > last:
                    return found
                found.append(dict(lambda_shape(record), eventSourceARN=batch.stream_arn))
                if int(record["dynamodb"]["SequenceNumber"]) == last:
                    return found
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            raise RangeGone(exc.response["Error"]["Code"]) from None
        raise
    raise RangeGone(f"the stream ended before sequence number {batch.last}")


def receive_all(sqs, config: RedriveConfig) -> List[dict]:
    from botocore.exceptions import ClientError

    messages = []
    try:
        while True:
            page = sqs.receive_message(
                QueueUrl=config.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=VISIBILITY_SECONDS, WaitTimeSeconds=config.wait_seconds
            ).get("Messages", [])
            if not page:
                return messages
            messages.extend(page)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise UsageError(f"--queue-url: no such queue {config.queue_url}") from None
        raise


def _release(sqs, config: RedriveConfig, messages: List[dict]) -> None:
    """Make received messages visible again at once (they were not handled)."""
    for message in messages:
        sqs.change_message_visibility(QueueUrl=config.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


@dataclass
class RedriveSummary:
    messages: int = 0
    records: int = 0
    objects: int = 0
    gone: int = 0
    failed: int = 0

    @property
    def exit_status(self) -> int:
        return 1 if self.gone or self.failed else 0


def redrive(config: RedriveConfig, clients: Callable[[str], Any], say: Callable[[str], None] = print,
            today: Optional[str] = None) -> RedriveSummary:
    """Redrive every message on the queue; `clients(name)` gives the boto3 client of a service."""
    sqs, streams, s3 = clients("sqs"), clients("dynamodbstreams"), clients("s3")
    messages = receive_all(sqs, config)
    try:
        batches = [parse_message(message) for message in messages]
    except UsageError:
        _release(sqs, config, messages)
        raise
    today = today or dt.datetime.now(dt.timezone.utc).date().isoformat()
    summary = RedriveSummary(messages=len(batches))
    kept = []  # messages not deleted: visible again at once for the next run, not after the timeout
    for batch, message in zip(batches, messages):
        try:
            stream_records = read_range(streams, batch)
        except RangeGone as exc:
            summary.gone += 1
            kept.append(message)
            say(f"sink redrive: {batch.label()} of {batch.stream_arn} is past the stream's 24-hour retention ({exc}); "
                "run `advising reconcile` against a fresh table export to find and repair what it changed")
            continue
        if config.dry_run:
            lines = [records.convert(record) for record in stream_records]
            groups = sink.group_by_date(lines, today)
            say(f"sink redrive: {batch.label()}: would write {len(lines)} records in {len(groups)} objects (dry run)")
            kept.append(message)
            continue
        result = sink.write_batch(stream_records, config.raw, s3, today)
        if result.retry_from is not None:
            summary.failed += 1
            kept.append(message)
            say(f"sink redrive: {batch.label()}: storing failed from sequence number {result.retry_from} ({result.error}); message kept")
            continue
        sqs.delete_message(QueueUrl=config.queue_url, ReceiptHandle=batch.receipt)
        summary.records += result.records
        summary.objects += len(result.objects)
        say(f"sink redrive: {batch.label()}: {result.records} records in {len(result.objects)} objects "
            f"({len(result.unconvertible)} unconvertible, kept for quarantine)")
    _release(sqs, config, kept)
    return summary
