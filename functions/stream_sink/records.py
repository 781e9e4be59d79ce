"""Pure conversion from DynamoDB records to change-log lines (data contract, section 1).

Shared by the stream sink (`handler`) and the export backfill (`backfill`): both turn DynamoDB JSON
into the same plain-JSON lines and the same deterministic gzip bytes, so a retried batch or a re-run
backfill rewrites identical objects. No I/O here.
"""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import re
from decimal import Decimal
from typing import Any, Iterable, Mapping, Optional

from boto3.dynamodb.types import Binary, TypeDeserializer

CHANGE_LOG_TABLE = "appointments"
KEY_ATTRIBUTE = "appointment_id"
# Longest DynamoDB sequence number is 40 digits; padding to it makes object keys sort in stream order.
SEQUENCE_WIDTH = 40
GZIP_LEVEL = 6

_DESERIALIZER = TypeDeserializer()
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class RecordError(ValueError):
    """A record that lacks what the change log needs; the message names the record and the field."""


def plain(value: Any) -> Any:
    """A deserialized DynamoDB value as plain JSON: integral numbers become ints, other numbers floats,
    sets sorted lists (set order is random, sorted output keeps retried writes byte-identical),
    binary base64 text."""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode("ascii")
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(item) for item in value)
    return value


def from_dynamodb_json(image: Optional[Mapping[str, Any]]) -> Optional[dict]:
    """A DynamoDB-JSON map (`{"duration_minutes": {"N": "30"}}`) as a plain dict; None stays None."""
    if image is None:
        return None
    return {name: plain(_DESERIALIZER.deserialize(attr)) for name, attr in image.items()}


def format_timestamp(moment: dt.datetime) -> str:
    """The contract's timestamp format in UTC: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`."""
    moment = moment.astimezone(dt.timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def epoch_to_datetime(value: Any) -> dt.datetime:
    """ApproximateCreationDateTime (epoch seconds, int or float with millisecond precision) as a UTC
    datetime. Goes through the number's decimal text, so 1700000000.123 keeps exactly 123 ms."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise RecordError(f"ApproximateCreationDateTime must be epoch seconds, got {value!r}")
    try:
        seconds = Decimal(str(value))
    except ArithmeticError:
        raise RecordError(f"ApproximateCreationDateTime must be epoch seconds, got {value!r}") from None
    if not seconds.is_finite():
        raise RecordError(f"ApproximateCreationDateTime must be epoch seconds, got {value!r}")
    whole = int(seconds // 1)
    micros = int((seconds - whole) * 1_000_000)
    return dt.datetime.fromtimestamp(whole, dt.timezone.utc) + dt.timedelta(microseconds=micros)


def table_from_arn(arn: str) -> str:
    """`arn:aws:dynamodb:<region>:<account>:table/<name>[/stream/<label>|/export/<id>]` -> `<name>`."""
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    segments = resource.split("/")
    if len(segments) < 2 or segments[0] != "table" or not segments[1]:
        raise RecordError(f"not a DynamoDB table, stream or export ARN: {arn!r}")
    return segments[1]


def stream_folder(stream_arn: str) -> str:
    """The batch's sub-folder: table name and stream label (`appointments-20240501T000000.000`).

    Lambda's DynamoDB event names the stream but not the shard. Sequence numbers are unique within a
    stream, so stream + sequence range identifies a batch. Colons are removed (Hadoop paths reject
    them) and the name never contains `=` (the contract keeps `key=value` for `ingest_date`)."""
    segments = stream_arn.split("/")
    label = segments[3] if len(segments) >= 4 and segments[2] == "stream" else ""
    if not label:
        raise RecordError(f"eventSourceARN is not a DynamoDB stream ARN: {stream_arn!r}")
    return safe_name(f"{table_from_arn(stream_arn)}-{label}")


def safe_name(text: str) -> str:
    """`text` with only letters, digits, `_`, `.` and `-`: no `=` (reserved for `ingest_date=`), no `:`
    (Hadoop paths reject it), and no leading `_` or `.` (Spark skips such files and folders as hidden)."""
    return _UNSAFE_NAME_CHARS.sub("", text).lstrip("_.")


def padded_sequence(sequence_number: str) -> str:
    return sequence_number.rjust(SEQUENCE_WIDTH, "0")


def stream_line(record: Mapping[str, Any]) -> dict:
    """One Lambda DynamoDB stream record (NEW_AND_OLD_IMAGES) as a change-log line."""
    event_id = record.get("eventID")
    change = record.get("dynamodb")
    if not event_id or not isinstance(change, dict):
        raise RecordError(f"stream record without eventID or dynamodb: {str(record)[:200]}")
    sequence_number = change.get("SequenceNumber")
    if not isinstance(sequence_number, str) or not sequence_number.isdigit():
        raise RecordError(f"record {event_id}: SequenceNumber must be a string of digits, got {sequence_number!r}")
    if "ApproximateCreationDateTime" not in change:
        raise RecordError(f"record {event_id}: no dynamodb.ApproximateCreationDateTime")
    created = epoch_to_datetime(change["ApproximateCreationDateTime"])
    return {
        "event_id": event_id,
        "event_name": record.get("eventName"),
        "sequence_number": sequence_number,
        "approximate_creation_time": format_timestamp(created),
        "table": table_from_arn(record.get("eventSourceARN") or ""),
        "keys": from_dynamodb_json(change.get("Keys")),
        "new_image": from_dynamodb_json(change.get("NewImage")),
        "old_image": from_dynamodb_json(change.get("OldImage")),
    }


def ingest_date(line: Mapping[str, Any]) -> str:
    """The UTC date the sink files a line under: the date part of its approximate_creation_time."""
    return line["approximate_creation_time"][:10]


def encode_lines(lines: Iterable[Mapping[str, Any]]) -> bytes:
    """gzip JSON Lines with a zero mtime and sorted keys: the same lines always give the same bytes."""
    text = "".join(json.dumps(line, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines)
    return gzip.compress(text.encode("utf-8"), compresslevel=GZIP_LEVEL, mtime=0)


def object_key(prefix: str, date: str, folder: str, name: str) -> str:
    """`{prefix}appointments/ingest_date=YYYY-MM-DD/<folder>/<name>.jsonl.gz`."""
    return f"{prefix}{CHANGE_LOG_TABLE}/ingest_date={date}/{folder}/{name}.jsonl.gz"


def normalise_prefix(prefix: str) -> str:
    """'' stays ''; 'raw', '/raw/' and 'raw/' all become 'raw/'."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""
