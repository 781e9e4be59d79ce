"""`advising sample-data`: a realistic, deterministic change log for demos, tests and benchmarks.

Place in the flow: it stands in for the stream sink. It writes what the sink would leave under an input
root (data contract, section 1): gzip JSON Lines under `appointments/ingest_date=YYYY-MM-DD/shard-NNNN/`
and the advisors dimension `advisors/advisors.csv`, with the mess a real stream carries (duplicates,
retried batches in other folders, late files, out-of-order lines, sequence numbers of different lengths,
odd timestamp offsets, malformed lines, invalid images). docs/sample-data.md lists every kind and its rate.

The log is split into STREAM_SHARDS independent shards, like a DynamoDB stream: each shard has its own
random generator, sequence-number range and sub-folder, so shards can be generated in parallel processes
while the bytes stay the same for the same arguments whatever the number of cores.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import random
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from common.errors import UsageError

DEFAULT_APPOINTMENTS = 1000
DEFAULT_SEED = 1
DEFAULT_DAYS = 30
DEFAULT_START = dt.date(2026, 9, 1)
MAX_DAYS = 3660  # keeps every sequence number within DynamoDB's 21 to 40 digits

STREAM_SHARDS = 4
LINES_PER_FILE = 40_000
FLUSH_LINES = 2_000
GZIP_LEVEL = 1
PLAIN_FILE_EVERY = 20  # every 20th file a shard opens is uncompressed .jsonl
PARALLEL_FROM = 20_000  # below this, process start-up costs more than it saves

SEC = 1_000_000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR

DEPARTMENTS = (
    "Engineering",
    "Business",
    "Arts & Humanities",
    "Natural Sciences",
    "Nursing",
    "Education",
    "Graduate Studies",
)
FIRST_NAMES = ("Alex", "Maria", "Jordan", "Wei", "Fatima", "Sam", "Priya", "Diego", "Aisha", "Tom", "Ingrid", "Kenji", "José", "Chloé")
LAST_NAMES = ("Nguyen", "Garcia", "Okafor", "Smith", "Kowalski", "Haddad", "Lee", "Brown", "Müller", "Rossi", "Patel", "Johansson")
CAPACITIES = (240, 300, 360, 420, 480)
BAD_CAPACITIES = ("n/a", "0", "7.5")
DURATIONS = (15, 20, 30, 30, 30, 45, 45, 60, 60, 90)
CHANNELS = ("web", "mobile", "walk_in", "phone")
_SHIFTS = (-3, -2, -1, 1, 2, 3, 4, 5, 6, 7)  # days a reschedule moves the start by
_ABSENT = object()  # the channel attribute is left out of the image
# Cumulative shares of the booking channel: web 45%, mobile 28%, walk_in 7%, phone 12%, null 4%, absent 4%.
_CHANNEL_SHARES = ((0.45, "web"), (0.73, "mobile"), (0.80, "walk_in"), (0.92, "phone"), (0.96, None), (1.01, _ABSENT))

# Rates (documented in docs/sample-data.md). Per appointment unless marked per line.
UNLISTED_ADVISOR_RATE = 0.02
EXTRA_ATTRIBUTE_RATE = 0.03
ODD_IMAGE_TIMESTAMPS_RATE = 0.20
ODD_CREATION_TIME_RATE = 0.10  # per line
WALK_IN_AFTER_START_RATE = 0.30  # of walk-ins
QUICK_EDIT_REVERSED_RATE = 0.03
CHANNEL_CHANGE_RATE = 0.06
RESCHEDULE_RATE = 0.08
DURATION_CHANGE_RATE = 0.05
ADVISOR_CHANGE_RATE = 0.04
REMINDER_RATE = 0.85  # of appointments booked more than a day ahead
CANCELLED_RATE, COMPLETED_RATE, NO_SHOW_RATE = 0.14, 0.62, 0.10  # the rest stays BOOKED
REMOVE_RATE = 0.03
RECREATE_SHARE = 0.40  # of removed appointments
LATE_RATE = 0.01
DUPLICATE_LINE_RATE = 0.005  # per line
RETRIED_LINE_RATE = 0.004  # per line
MALFORMED_EVERY = 40  # one malformed line per 40 appointments, kinds in rotation
INVALID_IMAGE_EVERY = 25  # one invalid image per 25 appointments, kinds in rotation, every other one fixed

MALFORMED_KINDS = (
    "not_json",
    "truncated_json",
    "json_array",
    "missing_event_id",
    "unknown_event_name",
    "sequence_number_json_number",
    "sequence_number_letters",
    "creation_time_space",
    "creation_time_impossible_date",
    "blank_line",
)
INVALID_IMAGE_KINDS = (
    "status_lower_case",
    "duration_float",
    "duration_string",
    "duration_too_long",
    "duration_too_short",
    "missing_student_id",
    "empty_advisor_id",
    "start_time_without_offset",
    "appointment_id_mismatch",
)

# (offset minutes, suffix) of the timestamps that are not plain UTC "Z".
_OFFSETS = ((0, "Z"), (0, "+00:00"), (-240, "-04:00"), (330, "+05:30"), (-420, "-07:00"), (60, "+01:00"), (545, "+09:05"))
_CANONICAL_IMAGE_STYLE = (0, "Z", 0)
_CANONICAL_CREATION_STYLE = (0, "Z", 3)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class SampleSummary:
    """What one generation wrote."""

    out_dir: Path
    appointments: int
    lines: int
    files: int
    bytes: int
    seconds: float

    def line(self) -> str:
        return (
            f"sample-data: {self.appointments} appointments, {self.lines} lines, {self.files} files, "
            f"{self.bytes} bytes in {self.seconds:.1f} s -> {self.out_dir}"
        )


@dataclass(frozen=True)
class _Plan:
    """Everything a shard needs; picklable, so a worker process gets it whole."""

    root: str
    appointments: int
    seed: int
    days: int
    start_day: int  # days since 1970-01-01
    advisors: Tuple[Tuple[str, str], ...]  # (advisor_id, department) of listed advisors
    unlisted_advisors: Tuple[str, ...]
    students: int
    malformed_phase: int
    invalid_phase: int


@dataclass
class _Counts:
    lines: int = 0
    files: int = 0
    bytes: int = 0

    def add(self, other: "_Counts") -> None:
        self.lines += other.lines
        self.files += other.files
        self.bytes += other.bytes


def generate(
    out_dir,
    appointments: int = DEFAULT_APPOINTMENTS,
    seed: int = DEFAULT_SEED,
    days: int = DEFAULT_DAYS,
    start: dt.date = DEFAULT_START,
    force: bool = False,
    workers: Optional[int] = None,
) -> SampleSummary:
    """Write a sample change log and advisors dimension under `out_dir`.

    The bytes depend only on (appointments, seed, days, start); `workers` (processes, one shard each at
    a time; default: the CPU count from PARALLEL_FROM appointments, else 1) only changes how fast.
    Refuses a non-empty `out_dir` unless `force`.
    """
    if appointments < 1:
        raise UsageError(f"--appointments must be at least 1, got {appointments}")
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(f"--days must be between 1 and {MAX_DAYS}, got {days}")
    began = time.perf_counter()
    out = Path(out_dir)
    _prepare_out_dir(out, force)

    rng = random.Random(f"advising-sample/{seed}/dimension")
    listed = _advisor_rows(rng, max(3, appointments // 25))
    counts = _Counts(files=1, bytes=_write_advisors_csv(out / "advisors" / "advisors.csv", listed))
    plan = _Plan(
        root=str(out / "appointments"),
        appointments=appointments,
        seed=seed,
        days=days,
        start_day=start.toordinal() - _EPOCH_ORDINAL,
        advisors=tuple((row[0], row[2]) for row in listed),
        unlisted_advisors=tuple(f"ADV{len(listed) + 1 + k:05d}" for k in range(max(1, len(listed) // 20))),
        students=max(1, appointments // 3),
        malformed_phase=rng.randrange(MALFORMED_EVERY),
        invalid_phase=rng.randrange(INVALID_IMAGE_EVERY),
    )
    shards = range(min(STREAM_SHARDS, appointments))
    if workers is None:
        workers = (os.cpu_count() or 1) if appointments >= PARALLEL_FROM else 1
    if min(workers, len(shards)) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(shards))) as pool:
            results = list(pool.map(_generate_shard, [plan] * len(shards), shards))
    else:
        results = [_generate_shard(plan, shard) for shard in shards]
    for result in results:
        counts.add(result)
    return SampleSummary(out, appointments, counts.lines, counts.files, counts.bytes, time.perf_counter() - began)


def _prepare_out_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UsageError(f"--out {out} is not empty; pass --force to replace it")
        # --force only ever deletes a previous sample (a typo in --out must not wipe a real folder).
        if not {p.name for p in out.iterdir()} <= {"appointments", "advisors"}:
            raise UsageError(f"--out {out} holds more than a previous sample (appointments/, advisors/); refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------- advisors dimension


def _advisor_rows(rng: random.Random, count: int) -> List[Tuple[str, str, str, str]]:
    rows = []
    for a in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if a % 50 == 0:
            name = f"{last}, {first}"  # exported as "Last, First": needs quoting
        elif a % 50 == 1:
            name = 'Pat "PJ" Smith' if a == 1 else f'{first} "{first[:2]}" {last}'
        else:
            name = f"{first} {last}"
        capacity = BAD_CAPACITIES[(a // 20) % len(BAD_CAPACITIES)] if a % 20 == 2 else str(rng.choice(CAPACITIES))
        rows.append((f"ADV{a + 1:05d}", name, DEPARTMENTS[a % len(DEPARTMENTS)], capacity))
    return rows


def _write_advisors_csv(path: Path, rows: Sequence[Tuple[str, str, str, str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")  # RFC 4180: CRLF, quotes doubled inside quoted fields
    writer.writerow(("advisor_id", "advisor_name", "department", "daily_capacity_minutes"))
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    path.write_bytes(data)
    return len(data)


# ---------------------------------------------------------------- files


class _RollingFile:
    """The lines one shard writes into one ingest_date folder: files of at most LINES_PER_FILE lines."""

    def __init__(self, shard_dir: Path, prefix: str, counts: _Counts, file_serial: List[int], part: int):
        self._dir = shard_dir
        self._prefix = prefix
        self._counts = counts
        self._serial = file_serial  # shared by the shard's files: decides which ones are plain .jsonl
        self._buffer: List[str] = []
        self._in_file = 0
        self._part = part
        self._handle = None
        self._compressor = None

    def extend(self, lines: List[str]) -> None:
        # One appointment's lines for this folder land in one file, so their order in it is as written.
        self._buffer.extend(lines)
        self._in_file += len(lines)
        if len(self._buffer) >= FLUSH_LINES:
            self._flush()
        if self._in_file >= LINES_PER_FILE:
            self._finish_file()

    def close(self) -> int:
        """Finish the current file; returns the part number a next file would take."""
        if self._buffer:
            self._flush()
        if self._handle is not None:
            self._finish_file()
        return self._part

    def _flush(self) -> None:
        if self._handle is None:
            self._open()
        data = ("\n".join(self._buffer) + "\n").encode("utf-8")
        self._buffer.clear()
        self._handle.write(self._compressor.compress(data) if self._compressor else data)

    def _open(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        plain = self._serial[0] % PLAIN_FILE_EVERY == PLAIN_FILE_EVERY // 2
        self._serial[0] += 1
        suffix = ".jsonl" if plain else ".jsonl.gz"
        self._handle = open(self._dir / f"{self._prefix}-{self._part:05d}{suffix}", "wb")
        # wbits=31: a gzip stream whose header has mtime 0 and no file name, so the bytes are reproducible.
        self._compressor = None if plain else zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)

    def _finish_file(self) -> None:
        if self._buffer:
            self._flush()
        if self._compressor is not None:
            self._handle.write(self._compressor.flush())
        self._counts.bytes += self._handle.tell()
        self._counts.files += 1
        self._handle.close()
        self._handle = None
        self._compressor = None
        self._part += 1
        self._in_file = 0


class _Folders:
    """A shard's open files, one per (ingest day, kind); files of days no later line can reach get closed."""

    def __init__(self, root: Path, shard: int, counts: _Counts):
        self._root = root
        self._sub = f"shard-{shard:04d}"
        self._counts = counts
        self._serial = [0]
        self._open: Dict[Tuple[int, str], _RollingFile] = {}
        self._closed_parts: Dict[Tuple[int, str], int] = {}  # a closed folder that gets lines again continues its numbering

    def write(self, routed: List[Tuple[int, str, str]]) -> None:
        groups: Dict[Tuple[int, str], List[str]] = {}
        for day, kind, line in routed:
            groups.setdefault((day, kind), []).append(line)
        for key, lines in groups.items():
            target = self._open.get(key)
            if target is None:
                folder = self._root / f"ingest_date={_day_text(key[0])}" / self._sub
                part = self._closed_parts.pop(key, 0)
                target = self._open[key] = _RollingFile(folder, key[1], self._counts, self._serial, part)
            target.extend(lines)
            self._counts.lines += len(lines)

    def close_before(self, day: int) -> None:
        for key in [k for k in self._open if k[0] < day]:
            self._closed_parts[key] = self._open.pop(key).close()

    def close_all(self) -> None:
        for key in sorted(self._open):
            self._open.pop(key).close()


_DAY_TEXT: Dict[int, str] = {}
_HOUR_TEXT: Dict[int, str] = {}


def _day_text(day: int) -> str:
    text = _DAY_TEXT.get(day)
    if text is None:
        text = _DAY_TEXT[day] = dt.date.fromordinal(day + _EPOCH_ORDINAL).isoformat()
    return text


def _timestamp(t_us: int, style: Tuple[int, str, int]) -> str:
    """t_us (microseconds since the epoch, UTC) as the contract's timestamp: local wall time + offset."""
    offset, suffix, digits = style
    hour, rest = divmod(t_us + offset * MIN, HOUR)
    prefix = _HOUR_TEXT.get(hour)
    if prefix is None:  # a cache by hour: formatting dates is the generator's hottest spot
        day, hour_of_day = divmod(hour, 24)
        prefix = _HOUR_TEXT[hour] = f"{_day_text(day)}T{hour_of_day:02d}:"
    minutes, rest = divmod(rest, MIN)
    seconds, micros = divmod(rest, SEC)
    if not digits:
        return f"{prefix}{minutes:02d}:{seconds:02d}{suffix}"
    # Digits past the microsecond (7 to 9) are nanoseconds the reader must truncate.
    return f"{prefix}{minutes:02d}:{seconds:02d}.{f'{micros:06d}{t_us % 997:03d}'[:digits]}{suffix}"


_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _odd_style(rng: random.Random) -> Tuple[int, str, int]:
    offset, suffix = rng.choice(_OFFSETS)
    return offset, suffix, rng.randrange(10)


# ---------------------------------------------------------------- one shard


def _generate_shard(plan: _Plan, shard: int) -> _Counts:
    counts = _Counts()
    generator = _ShardGenerator(plan, shard)
    folders = _Folders(Path(plan.root), shard, counts)
    current_day = None
    for i in range(shard, plan.appointments, STREAM_SHARDS):
        day = plan.start_day + i * plan.days // plan.appointments
        if day != current_day:
            # Nothing of an appointment starting on `day` is created more than 30 days before it.
            folders.close_before(day - 32)
            current_day = day
        folders.write(generator.appointment(i, day))
    folders.close_all()
    return counts


class _ShardGenerator:
    """The changes of one appointment at a time, as routed lines (ingest day, file kind, line)."""

    def __init__(self, plan: _Plan, shard: int):
        self.plan = plan
        self.rng = random.Random(f"advising-sample/{plan.seed}/shard/{shard}")
        self.t0 = (plan.start_day - 40) * DAY  # before any change of the log
        # Sequence numbers: base + microseconds since t0 * 10^6 + the appointment's place in the shard,
        # so they grow with time per item and never repeat in a shard. Shards 0 and 1 cross from 21 to
        # 22 digits (mid-period, and at the first start day): plain string order then picks wrong winners.
        self.seq_unit = 10**6
        crossing = {0: plan.start_day * DAY + plan.days * DAY // 2, 1: plan.start_day * DAY}.get(shard)
        if crossing is not None:
            self.seq_base = 10**21 - (crossing - self.t0) * self.seq_unit
        else:
            digits = {2: 30, 3: 40}[shard]
            self.seq_base = self.rng.randrange(10 ** (digits - 1), 2 * 10 ** (digits - 1))
        self.shard = shard

    # The appointment's life: INSERT, MODIFYs, maybe REMOVE and re-creation; then mess on the lines.
    def appointment(self, i: int, day: int) -> List[Tuple[int, str, str]]:
        rng, plan = self.rng, self.plan
        r = rng.random

        # random.randrange/choice cost microseconds each; these are exact enough for sample data.
        def below(n: int) -> int:
            return int(r() * n)

        def between(low: int, high: int) -> int:
            return low + int(r() * (high - low))

        def pick(options):
            return options[int(r() * len(options))]

        aid = f"apt-{i:07d}"
        start = day * DAY + (13 * 60 + 15 * below(40)) * MIN
        if r() < UNLISTED_ADVISOR_RATE:
            advisor, department = pick(plan.unlisted_advisors), pick(DEPARTMENTS)
        else:
            advisor, department = pick(plan.advisors)
        duration = pick(DURATIONS)
        x = r()
        channel = next(value for limit, value in _CHANNEL_SHARES if x < limit)
        if channel == "walk_in":
            created = start + between(1, 20) * MIN if r() < WALK_IN_AFTER_START_RATE else start - between(0, 60) * MIN
        else:
            created = start - max(10 * MIN, int(r() * r() * 30 * DAY))
        style = _odd_style(rng) if r() < ODD_IMAGE_TIMESTAMPS_RATE else _CANONICAL_IMAGE_STYLE

        created_text = _timestamp(created, style)
        image = {
            "appointment_id": aid,
            "student_id": f"S{below(plan.students):07d}",
            "advisor_id": advisor,
            "department": department,
            "start_time": _timestamp(start, style),
            "duration_minutes": duration,
            "status": "BOOKED",
            "created_at": created_text,
            "updated_at": created_text,
        }
        if channel is not _ABSENT:
            image["channel"] = channel
        if r() < EXTRA_ATTRIBUTE_RATE:
            image["legacy_booking_ref"] = f"LB-{below(10**6):06d}"

        changes: List[Tuple[int, str, Optional[dict]]] = [(created, "INSERT", image)]

        def modify(at: int, **updates) -> None:
            nonlocal image
            t = max(at, changes[-1][0] + SEC)
            image = dict(image, **updates)
            image["updated_at"] = _timestamp(t, style)
            changes.append((t, "MODIFY", image))

        quick_edit = r() < QUICK_EDIT_REVERSED_RATE
        if quick_edit:
            modify(created + between(5, 120) * SEC, duration_minutes=pick(DURATIONS))
        if r() < CHANNEL_CHANGE_RATE:
            modify(self._moment(changes[-1][0], start), channel=pick(CHANNELS))
        if r() < DURATION_CHANGE_RATE:
            modify(self._moment(changes[-1][0], start), duration_minutes=pick(DURATIONS))
        if r() < ADVISOR_CHANGE_RATE:
            advisor, department = pick(plan.advisors)
            modify(self._moment(changes[-1][0], start), advisor_id=advisor, department=department)
        if r() < RESCHEDULE_RATE:
            at = self._moment(changes[-1][0], start)
            shift = pick(_SHIFTS)
            if start + shift * DAY < at + HOUR:
                shift = abs(shift)
            start += shift * DAY
            modify(at, start_time=_timestamp(start, style))
        if start - DAY > changes[-1][0] + MIN and r() < REMINDER_RATE:
            modify(start - DAY + between(0, 300) * SEC)  # the reminder job touches updated_at only
        x = r()
        if x < CANCELLED_RATE:
            modify(self._moment(changes[-1][0], start), status="CANCELLED")
        elif x < CANCELLED_RATE + COMPLETED_RATE:
            modify(start + (duration + between(1, 90)) * MIN, status="COMPLETED")
        elif x < CANCELLED_RATE + COMPLETED_RATE + NO_SHOW_RATE:
            modify(start + between(15, 60) * MIN, status="NO_SHOW")

        if (i + plan.invalid_phase) % INVALID_IMAGE_EVERY == 0:
            serial = i // INVALID_IMAGE_EVERY
            valid = image
            t = changes[-1][0] + between(1, 120) * MIN
            bad = self._invalid_image(INVALID_IMAGE_KINDS[serial % len(INVALID_IMAGE_KINDS)], valid, start)
            bad["updated_at"] = _timestamp(t, style)
            changes.append((t, "MODIFY", bad))
            if serial % 2 == 0:  # fixed by a later valid MODIFY: the appointment leaves quarantine
                t += between(5, 24 * 60) * MIN
                fixed = dict(valid, updated_at=_timestamp(t, style))
                changes.append((t, "MODIFY", fixed))
        elif r() < REMOVE_RATE:
            t = changes[-1][0] + between(60, 3 * 24 * 60) * MIN
            changes.append((t, "REMOVE", None))
            if r() < RECREATE_SHARE:
                again = t + between(60, 2 * 24 * 60) * MIN
                new_start = (again // DAY + between(1, 10)) * DAY + (13 * 60 + 15 * below(40)) * MIN
                image = dict(
                    image,
                    start_time=_timestamp(new_start, style),
                    status="BOOKED",
                    created_at=_timestamp(again, style),
                    updated_at=_timestamp(again, style),
                )
                changes.append((again, "INSERT", image))
        return self._lines(i, aid, changes, quick_edit)

    def _moment(self, after: int, before: int) -> int:
        """A time a minute or more after `after` and before `before` when there is room."""
        if before - after <= 2 * MIN:
            return after + MIN
        return after + MIN + int(self.rng.random() * (before - after - 2 * MIN))

    def _invalid_image(self, kind: str, valid: dict, start: int) -> dict:
        bad = dict(valid)
        if kind == "status_lower_case":
            bad["status"] = valid["status"].lower()
        elif kind == "duration_float":
            bad["duration_minutes"] = float(valid["duration_minutes"])
        elif kind == "duration_string":
            bad["duration_minutes"] = str(valid["duration_minutes"])
        elif kind == "duration_too_long":
            bad["duration_minutes"] = 481
        elif kind == "duration_too_short":
            bad["duration_minutes"] = 4
        elif kind == "missing_student_id":
            del bad["student_id"]
        elif kind == "empty_advisor_id":
            bad["advisor_id"] = ""
        elif kind == "start_time_without_offset":
            bad["start_time"] = _timestamp(start, (0, "", 0))
        else:
            bad["appointment_id"] = valid["appointment_id"] + "-dup"
        return bad

    def _lines(self, i: int, aid: str, changes, quick_edit: bool) -> List[Tuple[int, str, str]]:
        rng = self.rng
        r = rng.random
        getrandbits = rng.getrandbits
        local = i // STREAM_SHARDS
        entries: List[Tuple[int, str]] = []  # (ingest day, line) per change, in sequence order
        old_json = "null"
        for t, name, image in changes:
            new_json = "null" if image is None else _compact_json(image)
            if name == "INSERT":
                old_json = "null"
            act = t + int(r() * 1_500_000)  # the stream stamps the change a little later
            act_text = _timestamp(act, _odd_style(rng) if r() < ODD_CREATION_TIME_RATE else _CANONICAL_CREATION_STYLE)
            seq = str(self.seq_base + (t - self.t0) * self.seq_unit + local)
            entries.append(
                (
                    act // DAY,
                    '{"event_id":"' + f"{getrandbits(128):032x}" + '","event_name":"' + name
                    + '","sequence_number":"' + seq + '","approximate_creation_time":"' + act_text
                    + '","table":"appointments","keys":{"appointment_id":"' + aid + '"},"new_image":'
                    + new_json + ',"old_image":' + old_json + "}",
                )
            )
            old_json = new_json

        order = list(range(len(entries)))
        if quick_edit and entries[0][0] == entries[1][0]:
            order[0], order[1] = 1, 0  # the INSERT and an edit seconds later, written the wrong way round
        late = None
        if len(entries) >= 2 and r() < LATE_RATE:
            # An older change (never the last, so never the winner) arrives only in a later folder.
            late = 0 if r() < 0.5 else rng.randrange(len(entries) - 1)
        routed: List[Tuple[int, str, str]] = []
        for k in order:
            day, line = entries[k]
            if k == late:
                routed.append((max(e[0] for e in entries) + rng.randint(1, 3), "late", line))
                continue
            routed.append((day, "changes", line))
            if r() < DUPLICATE_LINE_RATE:
                routed.append((day, "changes", line))
            if r() < RETRIED_LINE_RATE:  # a retried batch that crossed midnight: same record, next folder
                routed.append((day + 1, "changes", line))
        if (i + self.plan.malformed_phase) % MALFORMED_EVERY == 0:
            kind = MALFORMED_KINDS[(i // MALFORMED_EVERY) % len(MALFORMED_KINDS)]
            routed.append((entries[-1][0], "changes", self._malformed(kind, aid, changes[-1][0], seq)))
        return routed

    def _malformed(self, kind: str, aid: str, t: int, last_seq: str) -> str:
        # A newer sequence number than the appointment's real changes: a reader that failed to reject
        # the line would let it win.
        record = {
            "event_id": f"{self.rng.getrandbits(128):032x}",
            "event_name": "MODIFY",
            "sequence_number": str(int(last_seq) + 1),
            "approximate_creation_time": _timestamp(t + SEC, _CANONICAL_CREATION_STYLE),
            "table": "appointments",
            "keys": {"appointment_id": aid},
            "new_image": {"appointment_id": aid, "status": "CANCELLED"},
            "old_image": None,
        }
        if kind == "blank_line":
            return ""
        if kind == "not_json":
            return f"ERROR stream-sink: batch for shard-{self.shard:04d} failed, retrying (attempt 2/5)"
        if kind == "missing_event_id":
            del record["event_id"]
        elif kind == "unknown_event_name":
            record["event_name"] = "UPSERT"
        elif kind == "sequence_number_json_number":
            record["sequence_number"] = int(record["sequence_number"])
        elif kind == "sequence_number_letters":
            record["sequence_number"] = record["sequence_number"][:-3] + "A7F"
        elif kind == "creation_time_space":
            record["approximate_creation_time"] = record["approximate_creation_time"].replace("T", " ")[:19]
        elif kind == "creation_time_impossible_date":
            record["approximate_creation_time"] = "2026-02-30T10:00:00Z"
        text = _compact_json(record)
        if kind == "truncated_json":
            return text[: len(text) // 2]
        if kind == "json_array":
            return "[" + text + "]"
        return text


# ---------------------------------------------------------------- command line


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample-data",
        help="write a realistic sample change log and advisors dimension (deterministic per seed)",
        description="Write gzip JSON Lines under OUT/appointments/ingest_date=YYYY-MM-DD/ and OUT/advisors/advisors.csv, "
        "with the duplicates, late files and malformed records a real stream carries (see docs/sample-data.md).",
    )
    parser.add_argument("--out", required=True, help="output folder (must be absent or empty unless --force)")
    parser.add_argument("--appointments", default=str(DEFAULT_APPOINTMENTS), help=f"number of appointments (default {DEFAULT_APPOINTMENTS})")
    parser.add_argument("--seed", default=str(DEFAULT_SEED), help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--days", default=str(DEFAULT_DAYS), help=f"days the start times spread over (default {DEFAULT_DAYS})")
    parser.add_argument("--start", default=DEFAULT_START.isoformat(), metavar="YYYY-MM-DD", help=f"first appointment day (default {DEFAULT_START})")
    parser.add_argument("--force", action="store_true", help="replace --out if it holds a previous sample")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from jobs.config import parse_date

    summary = generate(
        args.out,
        appointments=_integer(args.appointments, "--appointments"),
        seed=_integer(args.seed, "--seed"),
        days=_integer(args.days, "--days"),
        start=parse_date(args.start, "--start"),
        force=args.force,
    )
    print(summary.line())
    return 0


def _integer(text: str, flag: str) -> int:
    # Parsed here rather than by argparse, whose type errors print a usage block instead of one line.
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{flag} must be an integer, got {text!r}") from None
