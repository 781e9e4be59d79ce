"""Lambda stream sink: DynamoDB Streams batch -> gzip JSON Lines change log in S3 (the pipeline's input).

Flow: appointments table -> DynamoDB stream (NEW_AND_OLD_IMAGES) -> this function (event source mapping
with ReportBatchItemFailures) -> s3://RAW_BUCKET/{RAW_PREFIX}appointments/ingest_date=YYYY-MM-DD/... ->
the Spark pipeline (jobs.pipeline). `advising sink redrive` writes the batches the mapping gave up on
through `write_batch`, so a redrive and a late success produce the same objects.

Every record becomes a line: one that cannot be converted becomes an `unconvertible` line the pipeline
quarantines, so a bad record never fails the batch. Each batch is grouped by the UTC date of its records;
each group becomes one object whose key is a pure function of the batch (stream, first and last sequence
number of the group), so a retried batch overwrites its own objects with identical bytes. Only a failed
write fails records: the response names the first record not safely stored and Lambda retries from there;
a record written twice (by a retry that starts inside an already-stored group) is one change to the
pipeline, which deduplicates by event_id.

Import stays cheap for cold starts: botocore's exceptions only, and the S3 client is created on first use.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from functions.stream_sink import records

_clients: Dict[tuple, Any] = {}
# The batch log line lists at most this many unconvertible records (CloudWatch Logs caps an event at 256 KB).
LOGGED_UNCONVERTIBLE = 20
UNKNOWN_STREAM_FOLDER = "unknown-stream"


class ConfigError(RuntimeError):
    """The function is deployed without what it needs; fails the whole invocation, loudly."""


class UnreportableFailure(RuntimeError):
    """A write failed and no record at or before it has a sequence number Lambda could resume from:
    the invocation fails, so Lambda retries the whole batch (which loses nothing)."""


@dataclass(frozen=True)
class SinkConfig:
    """Where the change log goes: RAW_BUCKET (required) and RAW_PREFIX (optional, e.g. "raw/")."""

    bucket: str
    prefix: str = ""

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "SinkConfig":
        env = os.environ if env is None else env
        bucket = env.get("RAW_BUCKET", "").strip()
        if not bucket:
            raise ConfigError("RAW_BUCKET is not set: the stream sink needs the name of the raw change-log bucket")
        return cls(bucket=bucket, prefix=records.normalise_prefix(env.get("RAW_PREFIX", "")))


def s3_client():
    """One S3 client per endpoint/region, created on first use (AWS_ENDPOINT_URL points it at moto in tests)."""
    identity = (os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    client = _clients.get(identity)
    if client is None:
        import boto3
        from botocore.config import Config

        # Standard retries ride out S3 throttling; what still fails becomes a partial batch failure.
        client = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 3}))
        _clients[identity] = client
    return client


@dataclass(frozen=True)
class Group:
    """The records of one batch filed under one ingest_date, in batch order."""

    date: str
    positions: List[int]
    lines: List[dict]

    def key(self, config: SinkConfig, folder: str) -> str:
        return records.object_key(config.prefix, self.date, folder, records.object_name(self.lines))


def filing_dates(lines: Sequence[Mapping[str, Any]], today: str) -> List[str]:
    """The ingest_date of each line: its own UTC date; an unconvertible record without a readable time goes
    beside the nearest earlier record of the batch that has one (else the nearest later one), so a retried
    batch files it in the same place; only a batch where no record has a time uses `today`."""
    own = [records.ingest_date(line) for line in lines]
    known = [date for date in own if date]
    dates, previous = [], None
    for date in own:
        previous = date or previous
        dates.append(previous or (known[0] if known else today))
    return dates


def group_by_date(lines: List[dict], today: str) -> List[Group]:
    """Groups in order of their first record in the batch (which is stream order within a shard)."""
    groups: Dict[str, Group] = {}
    for position, (line, date) in enumerate(zip(lines, filing_dates(lines, today))):
        group = groups.setdefault(date, Group(date, [], []))
        group.positions.append(position)
        group.lines.append(line)
    return list(groups.values())


def batch_folder(stream_records: Sequence[Any]) -> str:
    """The sub-folder of a batch: its stream (all records of a batch come from one stream)."""
    for record in stream_records:
        arn = record.get("eventSourceARN") if isinstance(record, Mapping) else None
        try:
            return records.stream_folder(arn or "")
        except records.RecordError:
            continue
    return UNKNOWN_STREAM_FOLDER


@dataclass
class BatchResult:
    """What writing one batch did: the records, the objects and bytes stored, the unconvertible records,
    and, after a failed write, the sequence number to resume from and the error."""

    records: int
    objects: List[str] = field(default_factory=list)
    bytes: int = 0
    unconvertible: List[dict] = field(default_factory=list)
    retry_from: Optional[str] = None
    error: Optional[str] = None

    def log_fields(self) -> dict:
        fields = {
            "records": self.records,
            "bytes": self.bytes,
            "objects": len(self.objects),
            "failures": 0 if self.retry_from is None else 1,
            "unconvertible": len(self.unconvertible),
        }
        if self.unconvertible:
            fields["unconvertible_records"] = [
                {"event_id": line["event_id"], "sequence_number": line["sequence_number"], "error": line[records.UNCONVERTIBLE_FIELD]["error"]}
                for line in self.unconvertible[:LOGGED_UNCONVERTIBLE]
            ]
        if self.error:
            fields["retry_from_sequence_number"] = self.retry_from
            fields["error"] = self.error
        return fields


def _resume_point(lines: List[dict], failed_position: int) -> str:
    """The sequence number Lambda resumes from: the failed group's first record, or, when an unconvertible
    record there has none, the nearest earlier record that has one (stored already; rewriting it is
    harmless, rule 2)."""
    for line in reversed(lines[: failed_position + 1]):
        if line.get("sequence_number"):
            return line["sequence_number"]
    raise UnreportableFailure("a write failed and no record at or before it has a SequenceNumber to resume from")


def write_batch(stream_records: Sequence[Any], config: SinkConfig, client: Any, today: str) -> BatchResult:
    """Convert and store one batch (Lambda-shaped records of one stream, in stream order), group by group,
    stopping at the first failed write."""
    lines = [records.convert(record) for record in stream_records]
    result = BatchResult(records=len(lines), unconvertible=[line for line in lines if records.is_unconvertible(line)])
    folder = batch_folder(stream_records)
    for group in group_by_date(lines, today):
        body = records.encode_lines(group.lines)
        key = group.key(config, folder)
        try:
            client.put_object(Bucket=config.bucket, Key=key, Body=body, ContentType="application/gzip")
        except (ClientError, BotoCoreError) as exc:
            # Groups run in order of their first record, so every record before this group's first one
            # belongs to a stored group: Lambda may resume here. Later groups were not written.
            result.retry_from = _resume_point(lines, group.positions[0])
            result.error = f"{type(exc).__name__}: {exc}"
            break
        result.bytes += len(body)
        result.objects.append(key)
    return result


def _oldest_age(stream_records: Sequence[Any], now: float) -> Optional[float]:
    times = []
    for record in stream_records:
        try:
            times.append(records.epoch_to_datetime(record["dynamodb"]["ApproximateCreationDateTime"]).timestamp())
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue
    return round(now - min(times), 3) if times else None


def handler(event: Mapping[str, Any], context: Any = None, clock: Callable[[], float] = time.time) -> dict:
    """The Lambda entry point. `clock` (epoch seconds) is there for tests; Lambda passes two arguments."""
    config = SinkConfig.from_env()
    stream_records = event.get("Records") or []
    if not stream_records:
        return {"batchItemFailures": []}
    now = clock()
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date().isoformat()
    result = write_batch(stream_records, config, s3_client(), today)
    log = {"event": "stream_sink_batch", "oldest_record_age_seconds": _oldest_age(stream_records, now), **result.log_fields()}
    print(json.dumps(log, sort_keys=True), flush=True)
    failures = [] if result.retry_from is None else [{"itemIdentifier": result.retry_from}]
    return {"batchItemFailures": failures}
