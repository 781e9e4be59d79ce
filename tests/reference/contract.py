"""Reference implementation of the data contract (shared/design/data-contract.md), in plain Python.

Place in the flow: test oracle only. The Spark pipeline (jobs/) publishes Parquet tables; the
differential tests compute the same four tables here, from the same change log, and compare. It is
written from the contract text alone, deliberately without reading the pipeline, and favours
obviously-correct over fast: every rule is a few lines a reviewer can check against the contract.

`compute_tables(input_dir, timezone, as_of)` returns {table name: [row dict, ...]} with exactly the
contract's columns: dates as `datetime.date`, timestamps as aware UTC `datetime`s (microseconds).
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
STATUSES = ("BOOKED", "CANCELLED", "COMPLETED", "NO_SHOW")
ADVISORS_HEADER = ("advisor_id", "advisor_name", "department", "daily_capacity_minutes")
MICROS_PER_HOUR = 3_600_000_000
MAX_LONG = 2**63 - 1

TABLE_COLUMNS = {
    "appointments": (
        "appointment_id", "student_id", "advisor_id", "department", "status", "channel",
        "start_time", "created_at", "updated_at", "end_time", "duration_minutes", "lead_time_hours",
        "appointment_date",
    ),
    "advisor_daily_load": (
        "date", "advisor_id", "department", "scheduled_count", "completed_count", "no_show_count",
        "cancelled_count", "booked_minutes", "distinct_students", "capacity_minutes", "utilization",
        "no_show_rate",
    ),
    "booking_trends_daily": (
        "date", "department", "bookings_created", "cancelled_count", "cancellation_rate",
        "median_lead_time_hours", "p90_lead_time_hours", "bookings_7d_avg",
    ),
    "quarantine": ("ingest_date", "reason", "record", "source_file", "appointment_id"),
}
PARTITION_COLUMNS = {
    "appointments": "appointment_date",
    "advisor_daily_load": "date",
    "booking_trends_daily": "date",
    "quarantine": "ingest_date",
}

# Explicit [0-9]: `\d` would also accept other scripts' digits.
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DIGITS = re.compile(r"[0-9]+")
_INGEST_FOLDER = re.compile(r"ingest_date=([0-9]{4}-[0-9]{2}-[0-9]{2})")


class DuplicateAdvisorError(ValueError):
    """The advisors dimension lists one advisor_id twice: the run must stop before publishing."""


def parse_timestamp(value: Any) -> Optional[dt.datetime]:
    """The contract's timestamp format as an aware UTC datetime truncated to microseconds, else None."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "").ljust(6, "0")[:6])
    if zone == "Z":
        offset = dt.timedelta(0)
    else:
        off_hours, off_minutes = int(zone[1:3]), int(zone[4:6])
        if off_hours > 23 or off_minutes > 59:
            return None
        offset = dt.timedelta(hours=off_hours, minutes=off_minutes) * (1 if zone[0] == "+" else -1)
    try:
        local = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros,
                            tzinfo=dt.timezone(offset))
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def epoch_micros(instant: dt.datetime) -> int:
    delta = instant - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def local_date(instant: dt.datetime, zone: ZoneInfo) -> dt.date:
    return instant.astimezone(zone).date()


def quantile(values: list, q: Fraction) -> Optional[float]:
    """Exact quantile with linear interpolation between closest ranks (position (n-1)*q), as a double."""
    if not values:
        return None
    ordered = sorted(Fraction(v) for v in values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


# ---------------------------------------------------------------------------------------------
# Input

@dataclass(frozen=True)
class SourceLine:
    ingest_date: dt.date
    source_file: str
    line_number: int
    raw: str


@dataclass(frozen=True)
class Change:
    """A line that passed rule 1."""

    line: SourceLine
    event_id: str
    event_name: str
    sequence: int
    created_micros: int
    appointment_id: str
    new_image: Any

    def order_key(self) -> tuple:
        # Rule 3: greatest sequence number as an integer, then instant, then event_id.
        return (self.sequence, self.created_micros, self.event_id)


def _hidden(name: str) -> bool:
    # Hadoop/Spark convention: `_SUCCESS`, `.crc`, `_temporary`, in-flight `.part` uploads are not data.
    return name.startswith((".", "_"))


def list_log_files(input_dir: str, as_of: Optional[dt.date]) -> list[tuple[dt.date, str]]:
    """(ingest_date, path) of every change-log file in scope, in a stable order."""
    root = os.path.join(input_dir, "appointments")
    found = []
    if not os.path.isdir(root):
        return found
    for folder in sorted(os.listdir(root)):
        match = _INGEST_FOLDER.fullmatch(folder)
        try:
            ingest_date = dt.date.fromisoformat(match.group(1)) if match else None
        except ValueError:  # ingest_date=2026-02-30 is not a folder the sink writes
            ingest_date = None
        if ingest_date is None:
            continue
        if as_of is not None and ingest_date > as_of:
            continue
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            for name in sorted(filenames):
                if not _hidden(name) and name.endswith((".jsonl.gz", ".jsonl")):
                    found.append((ingest_date, os.path.join(dirpath, name)))
    return found


def read_lines(ingest_date: dt.date, path: str) -> list[SourceLine]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        text = handle.read().decode("utf-8")
    lines = []
    # Only LF (optionally preceded by CR) ends a line: U+2028 and friends may sit inside JSON strings.
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if raw.strip(" \t\r") == "":
            continue
        lines.append(SourceLine(ingest_date, path, number, raw))
    return lines


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _present_string(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def check_line(line: SourceLine) -> tuple[Optional[Change], Optional[dict]]:
    """Rule 1: a Change, or a quarantine row naming the first broken requirement."""
    try:
        obj = json.loads(line.raw, parse_constant=_reject_constant)
    except ValueError:
        return None, _quarantine_row(line, "invalid_json", line.raw, None)
    if not isinstance(obj, dict):
        return None, _quarantine_row(line, "not_json_object", line.raw, None)
    keys = obj.get("keys")
    appointment_id = keys.get("appointment_id") if isinstance(keys, dict) else None
    known_id = appointment_id if _present_string(appointment_id) else None

    def reject(reason: str):
        return None, _quarantine_row(line, reason, line.raw, known_id)

    # A line the sink wrote for a record it could not convert: quarantined whole, whatever else it holds.
    if obj.get("unconvertible") is not None:
        return reject("unconvertible_record")
    for field in ("event_id", "event_name", "sequence_number", "approximate_creation_time"):
        if obj.get(field) is None or obj.get(field) == "":
            return reject(f"missing_{field}")
    if appointment_id is None or appointment_id == "":
        return reject("missing_appointment_id")
    # The field tables say string: a number here is not an id we can trust (see the report's decisions).
    if not isinstance(obj["event_id"], str):
        return reject("bad_event_id")
    if not isinstance(appointment_id, str):
        return reject("bad_key")
    if obj["event_name"] not in EVENT_NAMES:
        return reject("unknown_event_name")
    sequence = obj["sequence_number"]
    if not isinstance(sequence, str) or _DIGITS.fullmatch(sequence) is None:
        return reject("bad_sequence_number")
    created = parse_timestamp(obj["approximate_creation_time"])
    if created is None:
        return reject("bad_approximate_creation_time")
    change = Change(
        line=line,
        event_id=obj["event_id"],
        event_name=obj["event_name"],
        sequence=int(sequence),
        created_micros=epoch_micros(created),
        appointment_id=appointment_id,
        new_image=obj.get("new_image"),
    )
    return change, None


def _quarantine_row(line: SourceLine, reason: str, record: Optional[str], appointment_id: Optional[str]) -> dict:
    return {
        "ingest_date": line.ingest_date,
        "reason": reason,
        "record": record,
        "source_file": line.source_file,
        "appointment_id": appointment_id,
    }


def _is_json_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Every reason check_image gives (rule 5); every other reason is a rejected raw line (rule 1).
IMAGE_REASONS = frozenset({
    "null_image", "image_not_object", "bad_appointment_id", "appointment_id_mismatch", "bad_student_id",
    "bad_advisor_id", "bad_department", "bad_start_time", "bad_duration_minutes", "bad_status",
    "bad_created_at", "bad_updated_at", "bad_channel",
})


def check_image(image: Any, key_id: str) -> tuple[Optional[dict], Optional[str]]:
    """Rule 5 against the item table: (parsed fields, None) or (None, reason)."""
    if image is None:
        return None, "null_image"
    if not isinstance(image, dict):
        return None, "image_not_object"
    if not _present_string(image.get("appointment_id")):
        return None, "bad_appointment_id"
    if image["appointment_id"] != key_id:
        return None, "appointment_id_mismatch"
    for field in ("student_id", "advisor_id", "department"):
        if not _present_string(image.get(field)):
            return None, f"bad_{field}"
    # Checked in the item table's order, so the reason names the first broken rule.
    parsed = {"start_time": parse_timestamp(image.get("start_time"))}
    if parsed["start_time"] is None:
        return None, "bad_start_time"
    duration = image.get("duration_minutes")
    if not _is_json_int(duration) or not 5 <= duration <= 480:
        return None, "bad_duration_minutes"
    status = image.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        return None, "bad_status"
    for field in ("created_at", "updated_at"):
        parsed[field] = parse_timestamp(image.get(field))
        if parsed[field] is None:
            return None, f"bad_{field}"
    channel = image.get("channel")
    if channel is not None and not isinstance(channel, str):
        return None, "bad_channel"
    parsed.update(
        appointment_id=image["appointment_id"],
        student_id=image["student_id"],
        advisor_id=image["advisor_id"],
        department=image["department"],
        status=status,
        channel=channel,
        duration_minutes=duration,
    )
    return parsed, None


@dataclass(frozen=True)
class Advisor:
    advisor_id: str
    department: Optional[str]
    capacity: Optional[int]


def read_advisors(input_dir: str) -> dict[str, Advisor]:
    """The optional advisors dimension: every `{input}/advisors/*.csv`; a repeated advisor_id is an error."""
    folder = os.path.join(input_dir, "advisors")
    advisors: dict[str, Advisor] = {}
    if not os.path.isdir(folder):
        return advisors
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _hidden(name) or not name.endswith(".csv") or not os.path.isfile(path):
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != ADVISORS_HEADER:
                raise ValueError(f"{path}: header must be {','.join(ADVISORS_HEADER)}, got {reader.fieldnames}")
            for row in reader:
                advisor_id = row["advisor_id"]
                if advisor_id in advisors:
                    raise DuplicateAdvisorError(f"advisor_id {advisor_id!r} is listed more than once in {folder}")
                capacity_text = row["daily_capacity_minutes"] or ""
                capacity = int(capacity_text) if _DIGITS.fullmatch(capacity_text) else None
                if capacity is not None and not 0 < capacity <= MAX_LONG:
                    capacity = None
                advisors[advisor_id] = Advisor(advisor_id, row["department"] or None, capacity)
    return advisors


# ---------------------------------------------------------------------------------------------
# Compaction

def compact(input_dir: str, as_of: Optional[dt.date]) -> tuple[list[tuple[Change, dict]], list[dict]]:
    """Rules 1-5: ([(winning change, parsed image)] of the snapshot, quarantine rows)."""
    quarantine = []
    by_event: dict[str, Change] = {}
    for ingest_date, path in list_log_files(input_dir, as_of):
        for line in read_lines(ingest_date, path):
            change, rejected = check_line(line)
            if rejected is not None:
                quarantine.append(rejected)
            # Rule 2: one change per event_id; files come in (ingest_date, path) order, so the kept
            # copy (whose file a rule-5 quarantine row names) is the one in the earliest folder.
            elif change.event_id not in by_event:
                by_event[change.event_id] = change
    winners: dict[str, Change] = {}
    for change in by_event.values():
        current = winners.get(change.appointment_id)
        if current is None or change.order_key() > current.order_key():
            winners[change.appointment_id] = change
    snapshot = []
    for appointment_id in sorted(winners):
        winner = winners[appointment_id]
        if winner.event_name == "REMOVE":
            continue
        parsed, reason = check_image(winner.new_image, appointment_id)
        if reason is None:
            snapshot.append((winner, parsed))
        else:
            record = json.dumps(winner.new_image, ensure_ascii=False, separators=(",", ":"))
            quarantine.append(_quarantine_row(winner.line, reason, record, appointment_id))
    return snapshot, quarantine


# ---------------------------------------------------------------------------------------------
# Tables

def appointment_rows(snapshot: list[tuple[Change, dict]], zone: ZoneInfo) -> list[dict]:
    rows = []
    for _, image in snapshot:
        start, created = image["start_time"], image["created_at"]
        rows.append({
            "appointment_id": image["appointment_id"],
            "student_id": image["student_id"],
            "advisor_id": image["advisor_id"],
            "department": image["department"],
            "status": image["status"],
            "channel": image["channel"],
            "start_time": start,
            "created_at": created,
            "updated_at": image["updated_at"],
            "end_time": start + dt.timedelta(minutes=image["duration_minutes"]),
            "duration_minutes": image["duration_minutes"],
            "lead_time_hours": float(Fraction(epoch_micros(start) - epoch_micros(created), MICROS_PER_HOUR)),
            "appointment_date": local_date(start, zone),
        })
    return rows


def _ratio(numerator: int, denominator: Optional[int]) -> Optional[float]:
    return None if not denominator else numerator / denominator


def advisor_daily_load_rows(appointments: list[dict], advisors: dict[str, Advisor]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in appointments:
        groups.setdefault((row["appointment_date"], row["advisor_id"]), []).append(row)
    rows = []
    for (date, advisor_id), members in sorted(groups.items()):
        active = [m for m in members if m["status"] != "CANCELLED"]
        completed = sum(m["status"] == "COMPLETED" for m in members)
        no_show = sum(m["status"] == "NO_SHOW" for m in members)
        booked = sum(m["duration_minutes"] for m in active)
        advisor = advisors.get(advisor_id)
        capacity = advisor.capacity if advisor else None
        rows.append({
            "date": date,
            "advisor_id": advisor_id,
            "department": advisor.department if advisor else None,
            "scheduled_count": len(active),
            "completed_count": completed,
            "no_show_count": no_show,
            "cancelled_count": len(members) - len(active),
            "booked_minutes": booked,
            "distinct_students": len({m["student_id"] for m in active}),
            "capacity_minutes": capacity,
            "utilization": _ratio(booked, capacity),
            "no_show_rate": _ratio(no_show, completed + no_show),
        })
    return rows


def booking_trends_rows(appointments: list[dict], zone: ZoneInfo) -> list[dict]:
    by_department: dict[str, dict[dt.date, list[dict]]] = {}
    for row in appointments:
        day = local_date(row["created_at"], zone)
        by_department.setdefault(row["department"], {}).setdefault(day, []).append(row)
    rows = []
    one_day = dt.timedelta(days=1)
    for department, days in sorted(by_department.items()):
        first, last = min(days), max(days)
        day = first
        while day <= last:
            members = days.get(day, [])
            created = len(members)
            cancelled = sum(m["status"] == "CANCELLED" for m in members)
            leads = [m["lead_time_hours"] for m in members]
            window = sum(len(days.get(day - one_day * back, [])) for back in range(7))
            rows.append({
                "date": day,
                "department": department,
                "bookings_created": created,
                "cancelled_count": cancelled,
                "cancellation_rate": _ratio(cancelled, created),
                "median_lead_time_hours": quantile(leads, Fraction(1, 2)),
                "p90_lead_time_hours": quantile(leads, Fraction(9, 10)),
                "bookings_7d_avg": window / 7,
            })
            day += one_day
    return rows


def compute_tables(input_dir: str, timezone: str = "UTC", as_of: Optional[dt.date] = None) -> dict[str, list[dict]]:
    """The four published tables for the input in scope (ingest_date <= as_of, or everything)."""
    zone = ZoneInfo(timezone)
    advisors = read_advisors(input_dir)
    snapshot, quarantine = compact(input_dir, as_of)
    appointments = appointment_rows(snapshot, zone)
    return {
        "appointments": appointments,
        "advisor_daily_load": advisor_daily_load_rows(appointments, advisors),
        "booking_trends_daily": booking_trends_rows(appointments, zone),
        "quarantine": quarantine,
    }
