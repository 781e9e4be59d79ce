"""Backfill: a DynamoDB "export to S3" (full export, DynamoDB JSON, gzip) -> synthetic INSERT change-log lines.

The stream keeps 24 hours of changes; when that is not enough (first load, a sink outage longer than the
retention) the table's point-in-time export is turned into the same change log the stream sink writes,
so the pipeline needs no special case:

    {raw}/appointments/ingest_date=<export date>/backfill-<ExportId>/<data file>.jsonl.gz

Each item becomes an INSERT whose `event_id` is `backfill-<ExportId>-<appointment_id>` and whose
`sequence_number` is the export time in epoch milliseconds (13 digits). Real stream sequence numbers
have at least 21 digits, so every real change sorts after every backfilled one, and a later export
sorts after an earlier one. An item appears once per export, so records of one export never tie for
one appointment. Keys, lines and gzip bytes are functions of the export alone: a re-run rewrites the
same objects with the same bytes.

Both --export and --raw take an S3 URI (`s3://bucket/prefix`) or a local folder.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, List, Mapping

from functions.stream_sink import records
from common.errors import UsageError

SUMMARY_FILE = "manifest-summary.json"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Location:
    """A folder to read or write: an S3 prefix or a local directory, addressed by relative names."""

    def __init__(self, uri: str, flag: str):
        self.uri = uri.rstrip("/")
        self.flag = flag
        if uri.startswith("s3://"):
            bucket, _, prefix = uri[len("s3://"):].partition("/")
            if not bucket:
                raise UsageError(f"{flag} must be s3://BUCKET[/PREFIX] or a local folder, got {uri!r}")
            self.bucket = bucket
            self.prefix = records.normalise_prefix(prefix)
            self.path = None
        else:
            self.bucket = None
            self.path = Path(uri[len("file://"):] if uri.startswith("file://") else uri)

    def _client(self):
        import boto3

        return boto3.client("s3")

    def open(self, name: str) -> IO[bytes]:
        """A readable binary stream of `name`, or a UsageError naming the missing object."""
        if self.path is not None:
            try:
                return open(self.path / name, "rb")
            except FileNotFoundError:
                raise UsageError(f"{self.flag}: no {name} under {self.uri}") from None
        from botocore.exceptions import ClientError

        try:
            return self._client().get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404"):
                raise UsageError(f"{self.flag}: no {name} under {self.uri}") from None
            raise

    def write(self, name: str, body: bytes) -> str:
        """Write `name` (overwriting) and return where it went."""
        if self.path is not None:
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(target.name + ".tmp")
            temporary.write_bytes(body)
            # Readers never see a half-written file: the rename is atomic on one file system.
            os.replace(temporary, target)
            return str(target)
        from botocore.exceptions import ClientError

        try:
            self._client().put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body, ContentType="application/gzip")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                raise UsageError(f"{self.flag}: bucket {self.bucket!r} does not exist") from None
            raise
        return f"s3://{self.bucket}/{self.prefix}{name}"


@dataclass(frozen=True)
class ExportManifest:
    export_id: str
    table: str
    export_time: dt.datetime
    data_files: List[str]  # relative to the export folder, e.g. "data/abc.json.gz"

    @property
    def sequence_number(self) -> str:
        return str((self.export_time - _EPOCH) // dt.timedelta(milliseconds=1))

    @property
    def folder(self) -> str:
        return f"backfill-{self.export_id}"


def parse_manifest(summary: Mapping, files_text: str, where: str) -> ExportManifest:
    """The export's identity, time and data files, from manifest-summary.json and manifest-files.json."""
    if summary.get("outputFormat", "DYNAMODB_JSON") != "DYNAMODB_JSON":
        raise UsageError(f"{where}: outputFormat is {summary.get('outputFormat')!r}; only DYNAMODB_JSON exports can be backfilled")
    if summary.get("exportType", "FULL_EXPORT") != "FULL_EXPORT":
        raise UsageError(f"{where}: exportType is {summary.get('exportType')!r}; only full exports can be backfilled")
    try:
        export_id = summary["exportArn"].rsplit("/", 1)[1]
        table = records.table_from_arn(summary["tableArn"])
        export_time = dt.datetime.fromisoformat(summary["exportTime"].replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    except (KeyError, IndexError, AttributeError, ValueError, records.RecordError) as exc:
        raise UsageError(f"{where}: {SUMMARY_FILE} lacks a valid exportArn, tableArn or exportTime ({exc})") from None
    marker = f"{export_id}/"
    data_files = []
    for number, text in enumerate(files_text.splitlines(), start=1):
        if not text.strip():
            continue
        key = json.loads(text).get("dataFileS3Key", "")
        if marker not in key:
            raise UsageError(f"{where}: manifest-files.json line {number} has no data file of export {export_id}: {key!r}")
        # Keys in the manifest are bucket-absolute; relative names let a copied export be read anywhere.
        data_files.append(key.split(marker, 1)[1])
    return ExportManifest(export_id, table, export_time, data_files)


def read_manifest(export: Location) -> ExportManifest:
    with export.open(SUMMARY_FILE) as stream:
        summary = json.loads(stream.read())
    files_name = summary.get("manifestFilesS3Key", "manifest-files.json").rsplit("/", 1)[-1]
    with export.open(files_name) as stream:
        files_text = stream.read().decode("utf-8")
    return parse_manifest(summary, files_text, export.uri)


def synthetic_lines(items: Iterator[str], manifest: ExportManifest, data_file: str) -> Iterator[dict]:
    """One INSERT line per exported item (`{"Item": {...}}` per line), in file order. An item that cannot
    be converted becomes an unconvertible line (quarantined by the pipeline), like a stream record."""
    created = records.format_timestamp(manifest.export_time)
    for number, text in enumerate(items, start=1):
        if not text.strip():
            continue
        try:
            exported = json.loads(text)
            item = records.image(exported["Item"], "Item")
        except (ValueError, KeyError, TypeError) as exc:
            yield _unconvertible_item(text, exc, manifest, data_file, number)
            continue
        key = item.get(records.KEY_ATTRIBUTE)
        if not isinstance(key, str) or not key:
            raise UsageError(
                f"{data_file} line {number}: item has no {records.KEY_ATTRIBUTE}; is this an export of the appointments table?"
            )
        yield {
            "event_id": f"backfill-{manifest.export_id}-{key}",
            "event_name": "INSERT",
            "sequence_number": manifest.sequence_number,
            "approximate_creation_time": created,
            "table": manifest.table,
            "keys": {records.KEY_ATTRIBUTE: key},
            "new_image": item,
            "old_image": None,
        }


def _unconvertible_item(text: str, error: Exception, manifest: ExportManifest, data_file: str, number: int) -> dict:
    """The quarantined stand-in for an export line that is not a convertible item: named by file and line
    (its key may be unreadable), carrying the line itself."""
    record = {"eventID": f"backfill-{manifest.export_id}-{Path(data_file).name}-{number}", "exportLine": text.rstrip("\n")}
    try:  # the key, when it is readable, lets the analyst find the appointment in quarantine
        record["dynamodb"] = {"Keys": {records.KEY_ATTRIBUTE: json.loads(text)["Item"][records.KEY_ATTRIBUTE]}}
    except (ValueError, KeyError, TypeError):
        pass
    line = records.unconvertible_line(record, error)
    line.update(sequence_number=manifest.sequence_number, approximate_creation_time=records.format_timestamp(manifest.export_time),
                table=manifest.table, event_name="INSERT")
    return line


@dataclass(frozen=True)
class BackfillSummary:
    export_id: str
    items: int
    objects: List[str]


def backfill(export_uri: str, raw_uri: str) -> BackfillSummary:
    """Write the export under `raw_uri` as change-log objects, one per non-empty export data file."""
    export = Location(export_uri, "--export")
    raw = Location(raw_uri, "--raw")
    manifest = read_manifest(export)
    date = manifest.export_time.date().isoformat()
    items = 0
    written = []
    for data_file in manifest.data_files:
        with export.open(data_file) as stream, gzip.open(stream, "rt", encoding="utf-8") as text:
            lines = list(synthetic_lines(text, manifest, data_file))
        if not lines:
            continue
        stem = records.safe_name(Path(data_file).name.split(".", 1)[0])
        name = records.object_key("", date, manifest.folder, stem)
        written.append(raw.write(name, records.encode_lines(lines)))
        items += len(lines)
    return BackfillSummary(manifest.export_id, items, written)
