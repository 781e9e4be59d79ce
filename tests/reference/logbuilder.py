"""Test helpers that write change logs and advisor dimensions in the contract's input layout.

Used by the reference's unit tests and by the differential tests, so both feed the reference and the
Spark pipeline byte-identical inputs.
"""
from __future__ import annotations

import csv
import gzip
import json
import os
from typing import Any, Iterable, Optional, Union

Line = Union[dict, str]  # a dict is written as one JSON line, a str verbatim (for malformed lines)
DROP = object()  # marks a field to leave out of a record or image


def image(appointment_id: str, /, **overrides: Any) -> dict:
    """A valid appointment item; pass `field=DROP` to leave a field out."""
    item = {
        "appointment_id": appointment_id,
        "student_id": "s-1",
        "advisor_id": "adv-1",
        "department": "MATH",
        "start_time": "2026-03-10T15:00:00Z",
        "duration_minutes": 30,
        "status": "BOOKED",
        "created_at": "2026-03-01T12:00:00Z",
        "updated_at": "2026-03-01T12:00:00Z",
        "channel": "web",
    }
    item.update(overrides)  # positional-only id above, so an override may replace it
    return {key: value for key, value in item.items() if value is not DROP}


def change(
    event_id: str,
    appointment_id: Optional[str],
    sequence: Any,
    /,
    event_name: str = "INSERT",
    created: Any = "2026-03-01T12:00:00Z",
    new_image: Any = "default",
    **extra: Any,
) -> dict:
    """One stream record; `new_image` defaults to a valid image for INSERT/MODIFY and null for REMOVE.

    `extra` overrides any field by its record name (`event_id=DROP` leaves the field out)."""
    if isinstance(new_image, str) and new_image == "default":
        new_image = None if event_name == "REMOVE" else image(appointment_id)
    record = {
        "event_id": event_id,
        "event_name": event_name,
        "sequence_number": sequence,
        "approximate_creation_time": created,
        "table": "appointments",
        "keys": {"appointment_id": appointment_id},
        "new_image": new_image,
        "old_image": None,
    }
    record.update(extra)
    return {key: value for key, value in record.items() if value is not DROP}


def seq(n: int, digits: int = 21) -> str:
    """A DynamoDB-like sequence number: `n` left-padded to `digits` digits with a leading 1."""
    return "1" + str(n).rjust(digits - 1, "0")


def render(lines: Iterable[Line]) -> str:
    return "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)


def write_log(root: str, ingest_date: str, name: str, lines: Iterable[Line], subdir: str = "") -> str:
    """Write `{root}/appointments/ingest_date=.../{subdir}/{name}`; gzip when the name ends in .gz."""
    folder = os.path.join(root, "appointments", f"ingest_date={ingest_date}", subdir)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    data = render(lines).encode("utf-8")
    if name.endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        with open(path, "wb") as handle:
            handle.write(data)
    return path


def write_advisors(root: str, rows: Iterable[Iterable[str]], name: str = "advisors.csv") -> str:
    """Write an RFC 4180 advisors CSV (header included; CRLF line ends, quotes doubled by csv)."""
    folder = os.path.join(root, "advisors")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["advisor_id", "advisor_name", "department", "daily_capacity_minutes"])
        writer.writerows(rows)
    return path
