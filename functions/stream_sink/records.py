"""Pure conversion from DynamoDB records to change-log lines (data contract, section 1).

Shared by the stream sink (`handler`), its redrive (`advising sink redrive`) and the export backfill
(`backfill`): all turn DynamoDB JSON into the same plain-JSON lines and the same deterministic gzip bytes,
so a retried batch or a re-run backfill rewrites identical objects. No I/O here.

DynamoDB JSON arrives as JSON text (the Lambda event, an export file): binary values are base64 strings and
numbers are strings. The conversion is written out here rather than done with boto3's TypeDeserializer,
which wants bytes for `B`/`BS` and raises TypeError on the base64 text Lambda delivers (issue 13).

A record that cannot become a contract line (no keys, a malformed image, an unknown type tag) still becomes
a line: `unconvertible_line` keeps what could be read plus the record itself under the `unconvertible`
marker field, and the pipeline quarantines such a line with reason `unconvertible_record`.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, List, Mapping, Optional

from common.change_log import UNCONVERTIBLE_FIELD

CHANGE_LOG_TABLE = "appointments"
KEY_ATTRIBUTE = "appointment_id"
# Longest DynamoDB sequence number is 40 digits; padding to it makes object keys sort in stream order.
SEQUENCE_WIDTH = 40
GZIP_LEVEL = 6

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class RecordError(ValueError):
    """A record that lacks what the change log needs; the message names the record and the field."""


def _number(text: Any, path: str) -> Any:
    """A DynamoDB number (a string in DynamoDB JSON) as a JSON integer when integral, else a float."""
    if not isinstance(text, str):
        raise RecordError(f"{path}: N must be a string of digits, got {text!r}")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RecordError(f"{path}: N is not a number: {text!r}") from None
    if not number.is_finite():
        raise RecordError(f"{path}: N is not a finite number: {text!r}")
    return int(number) if number == number.to_integral_value() else float(number)


def _binary(value: Any, path: str) -> str:
    """A DynamoDB binary as base64 text. JSON text carries it as base64 already (checked, and written in
    canonical form); the boto3 API hands over bytes."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise RecordError(f"{path}: B is not base64 text: {value[:40]!r}") from None
    else:
        raise RecordError(f"{path}: B must be base64 text, got {type(value).__name__}")
    return base64.b64encode(raw).decode("ascii")


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{path}: S must be a string, got {type(value).__name__}")
    return value


def _members(value: Any, tag: str, path: str) -> list:
    if not isinstance(value, list):
        raise RecordError(f"{path}: {tag} must be a list, got {type(value).__name__}")
    return value


def attribute_value(attr: Any, path: str = "value") -> Any:
    """One DynamoDB-JSON attribute value (`{"N": "30"}`) as plain JSON: integral numbers become ints, other
    numbers floats, sets sorted lists (set order is random; sorted output keeps retried writes
    byte-identical), binary base64 text, NULL null. Anything else raises RecordError naming `path`."""
    if not isinstance(attr, Mapping) or len(attr) != 1:
        raise RecordError(f"{path}: not a DynamoDB attribute value (one type tag): {str(attr)[:80]}")
    ((tag, value),) = attr.items()
    if tag == "S":
        return _string(value, path)
    if tag == "N":
        return _number(value, path)
    if tag == "BOOL":
        if not isinstance(value, bool):
            raise RecordError(f"{path}: BOOL must be true or false, got {value!r}")
        return value
    if tag == "NULL":
        if value is not True:
            raise RecordError(f"{path}: NULL must be true, got {value!r}")
        return None
    if tag == "B":
        return _binary(value, path)
    if tag == "M":
        return image(value, path)
    if tag == "L":
        return [attribute_value(item, f"{path}[{n}]") for n, item in enumerate(_members(value, tag, path))]
    if tag == "SS":
        return sorted(_string(item, path) for item in _members(value, tag, path))
    if tag == "NS":
        return sorted(_number(item, path) for item in _members(value, tag, path))
    if tag == "BS":
        return sorted(_binary(item, path) for item in _members(value, tag, path))
    raise RecordError(f"{path}: unknown DynamoDB type {tag!r}")


def image(attributes: Any, path: str = "image") -> dict:
    """A DynamoDB-JSON map (`{"duration_minutes": {"N": "30"}}`) as a plain dict."""
    if not isinstance(attributes, Mapping):
        raise RecordError(f"{path}: must be a map of attributes, got {type(attributes).__name__}")
    return {name: attribute_value(attr, f"{path}.{name}") for name, attr in attributes.items()}


def from_dynamodb_json(attributes: Optional[Mapping[str, Any]]) -> Optional[dict]:
    """A DynamoDB-JSON map as a plain dict; None stays None."""
    return None if attributes is None else image(attributes)


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


def object_name(lines: List[Mapping[str, Any]]) -> str:
    """The name of the object holding `lines` (one group of a batch, in stream order): the first and last
    sequence numbers, zero-padded. Unconvertible records may lack one; a group where none has one is
    named by its content, which is as deterministic."""
    sequences = [line["sequence_number"] for line in lines if line.get("sequence_number")]
    if sequences:
        return f"{padded_sequence(sequences[0])}-{padded_sequence(sequences[-1])}"
    return "unsequenced-" + hashlib.sha256(encode_lines(lines)).hexdigest()[:32]


def stream_line(record: Mapping[str, Any]) -> dict:
    """One Lambda DynamoDB stream record (NEW_AND_OLD_IMAGES) as a change-log line; RecordError when it
    cannot become one."""
    event_id = record.get("eventID")
    change = record.get("dynamodb")
    if not isinstance(event_id, str) or not event_id or not isinstance(change, Mapping):
        raise RecordError("stream record without eventID or dynamodb")
    sequence_number = change.get("SequenceNumber")
    if not isinstance(sequence_number, str) or not sequence_number.isdigit():
        raise RecordError(f"SequenceNumber must be a string of digits, got {sequence_number!r}")
    if "ApproximateCreationDateTime" not in change:
        raise RecordError("no dynamodb.ApproximateCreationDateTime")
    created = epoch_to_datetime(change["ApproximateCreationDateTime"])
    keys = image(change.get("Keys"), "Keys")
    if not isinstance(keys.get(KEY_ATTRIBUTE), str) or not keys[KEY_ATTRIBUTE]:
        raise RecordError(f"Keys has no string {KEY_ATTRIBUTE}")
    return {
        "event_id": event_id,
        "event_name": record.get("eventName"),
        "sequence_number": sequence_number,
        "approximate_creation_time": format_timestamp(created),
        "table": table_from_arn(record.get("eventSourceARN") or ""),
        "keys": keys,
        "new_image": None if change.get("NewImage") is None else image(change["NewImage"], "NewImage"),
        "old_image": None if change.get("OldImage") is None else image(change["OldImage"], "OldImage"),
    }


def _as_json(value: Any) -> Any:
    """Anything a caller put in a record, as JSON: bytes as base64 text, other non-JSON values as text."""
    if isinstance(value, Mapping):
        return {str(key): _as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_as_json(item) for item in value]
        return items if isinstance(value, (list, tuple)) else sorted(items, key=repr)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return value
    return str(value)


def _salvage(read, fallback=None):
    try:
        return read()
    except (RecordError, ArithmeticError, AttributeError, KeyError, TypeError, ValueError):
        return fallback


def unconvertible_line(record: Any, error: Exception) -> dict:
    """The line for a record `stream_line` refused: whatever could be read (for the quarantine row and the
    object key), the error, and the whole record under the `unconvertible` marker, so nothing is lost and
    the pipeline quarantines it (reason `unconvertible_record`) instead of applying it."""
    record = record if isinstance(record, Mapping) else {"record": record}
    change = record.get("dynamodb") if isinstance(record.get("dynamodb"), Mapping) else {}
    sequence_number = change.get("SequenceNumber")
    key = _salvage(lambda: change["Keys"][KEY_ATTRIBUTE]["S"])
    event_id, event_name = record.get("eventID"), record.get("eventName")
    return {
        "event_id": event_id if isinstance(event_id, str) else None,
        "event_name": event_name if isinstance(event_name, str) else None,
        "sequence_number": sequence_number if isinstance(sequence_number, str) and sequence_number.isdigit() else None,
        "approximate_creation_time": _salvage(
            lambda: format_timestamp(epoch_to_datetime(change["ApproximateCreationDateTime"]))
        ),
        "table": _salvage(lambda: table_from_arn(record["eventSourceARN"])),
        "keys": {KEY_ATTRIBUTE: key} if isinstance(key, str) and key else None,
        "new_image": None,
        "old_image": None,
        UNCONVERTIBLE_FIELD: {"error": str(error), "stream_record": _as_json(record)},
    }


def convert(record: Any) -> dict:
    """The change-log line of a stream record: its contract line, or its unconvertible line. Whatever goes
    wrong in the conversion of one record stays with that record: it never fails the batch."""
    try:
        if not isinstance(record, Mapping):
            raise RecordError(f"stream record is not an object: {type(record).__name__}")
        return stream_line(record)
    except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError) as exc:
        return unconvertible_line(record, exc)


def is_unconvertible(line: Mapping[str, Any]) -> bool:
    return UNCONVERTIBLE_FIELD in line


def ingest_date(line: Mapping[str, Any]) -> Optional[str]:
    """The UTC date the sink files a line under: the date part of its approximate_creation_time (None for
    an unconvertible record without a readable time; the handler files it beside its neighbours)."""
    created = line.get("approximate_creation_time")
    return created[:10] if created else None


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
