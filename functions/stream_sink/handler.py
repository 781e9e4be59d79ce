"""Lambda stream sink: DynamoDB Streams batch -> gzip JSON Lines change log in S3 (the pipeline's input).

Flow: appointments table -> DynamoDB stream (NEW_AND_OLD_IMAGES) -> this function (event source mapping
with ReportBatchItemFailures) -> s3://RAW_BUCKET/{RAW_PREFIX}appointments/ingest_date=YYYY-MM-DD/... ->
the Spark pipeline (jobs.pipeline).

Each batch is grouped by the UTC date of its records; each group becomes one object whose key is a pure
function of the batch (stream, first and last sequence number of the group), so a retried batch
overwrites its own objects with identical bytes. On a failed write the response names the first record
not safely stored and Lambda retries from there; a record written twice (by a retry that starts inside
an already-stored group) is one change to the pipeline, which deduplicates by event_id.

Import stays cheap for cold starts: boto3 only, and the S3 client is created on first use.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from botocore.exceptions import BotoCoreError, ClientError

from functions.stream_sink import records

_clients: Dict[tuple, Any] = {}


class ConfigError(RuntimeError):
    """The function is deployed without what it needs; fails the whole invocation, loudly."""


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
        first = records.padded_sequence(self.lines[0]["sequence_number"])
        last = records.padded_sequence(self.lines[-1]["sequence_number"])
        return records.object_key(config.prefix, self.date, folder, f"{first}-{last}")


def group_by_date(lines: List[dict]) -> List[Group]:
    """Groups in order of their first record in the batch (which is stream order within a shard)."""
    groups: Dict[str, Group] = {}
    for position, line in enumerate(lines):
        date = records.ingest_date(line)
        group = groups.setdefault(date, Group(date, [], []))
        group.positions.append(position)
        group.lines.append(line)
    return list(groups.values())


def handler(event: Mapping[str, Any], context: Any = None) -> dict:
    config = SinkConfig.from_env()
    stream_records = event.get("Records") or []
    if not stream_records:
        return {"batchItemFailures": []}
    lines = [records.stream_line(record) for record in stream_records]
    folder = records.stream_folder(stream_records[0].get("eventSourceARN") or "")
    groups = group_by_date(lines)

    written_bytes = 0
    written_objects = 0
    failed_position: Optional[int] = None
    error = None
    for group in groups:
        body = records.encode_lines(group.lines)
        try:
            s3_client().put_object(
                Bucket=config.bucket, Key=group.key(config, folder), Body=body, ContentType="application/gzip"
            )
        except (ClientError, BotoCoreError) as exc:
            # Groups run in order of their first record, so every record before this group's first one
            # belongs to a stored group: Lambda may resume here. Later groups were not written.
            failed_position = group.positions[0]
            error = f"{type(exc).__name__}: {exc}"
            break
        written_bytes += len(body)
        written_objects += 1

    failures = []
    if failed_position is not None:
        failures.append({"itemIdentifier": lines[failed_position]["sequence_number"]})
    oldest = min(float(r["dynamodb"]["ApproximateCreationDateTime"]) for r in stream_records)
    log = {
        "event": "stream_sink_batch",
        "records": len(lines),
        "bytes": written_bytes,
        "objects": written_objects,
        "oldest_record_age_seconds": round(time.time() - oldest, 3),
        "failures": len(failures),
    }
    if error:
        log["retry_from_sequence_number"] = failures[0]["itemIdentifier"]
        log["error"] = error
    print(json.dumps(log, sort_keys=True), flush=True)
    return {"batchItemFailures": failures}
