"""A nightly run recomputes only what the night reached (jobs.incremental) and still equals one full run."""
import datetime as dt
import gzip
import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.contract import TABLES

from tests.jobs.test_pipeline import assert_same_tables, run, run_ungated

pytestmark = pytest.mark.slow

ZONE = "America/New_York"
DEPARTMENTS = ("Math", "History", "Biology")


def change(event_id, seq, appointment_id, *, day, department="Math", start_hour=14, status="BOOKED", name="MODIFY",
           created_day=None, duration=30, image=None):
    """One change-log line as the stream sink writes it (compact JSON, numbers where the contract has them)."""
    created = f"2026-09-{created_day or day:02d}T13:00:00Z"
    if image is None and name != "REMOVE":
        image = {
            "appointment_id": appointment_id, "student_id": f"s-{appointment_id}", "advisor_id": f"adv-{department}",
            "department": department, "start_time": f"2026-09-{day:02d}T{start_hour:02d}:00:00Z",
            "duration_minutes": duration, "status": status, "created_at": created,
            "updated_at": f"2026-09-{day:02d}T12:00:00Z",
        }
    return {
        "event_id": event_id, "event_name": name, "sequence_number": str(seq),
        "approximate_creation_time": f"2026-09-{day:02d}T12:00:00Z", "table": "appointments",
        "keys": {"appointment_id": appointment_id}, "new_image": image, "old_image": None,
    }


def write(root, ingest_date, name, lines):
    folder = Path(root) / "appointments" / f"ingest_date={ingest_date}"
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{name}.jsonl.gz", "wt") as handle:
        handle.write("\n".join(line if isinstance(line, str) else json.dumps(line, separators=(",", ":")) for line in lines) + "\n")


def history(root):
    """Ten days of bookings in three departments, a few with a broken image, one broken line a day."""
    for day in range(1, 11):
        lines = []
        for n in range(6):
            appointment = f"a{day:02d}{n}"
            lines.append(change(f"e-{appointment}-1", day * 100 + n, appointment, day=day + 2, created_day=day,
                                department=DEPARTMENTS[n % 3], name="INSERT", duration=999 if n == 5 else 30))
        lines.append("{not json")
        write(root, f"2026-09-{day:02d}", "part-0", lines)


def night(root):
    """Day 11: reschedules across days and departments, removals, a fix, a break, a new booking, a late copy."""
    lines = [
        # Rescheduled to another day (appointments and load move between two dates).
        change("e-a010-2", 2000, "a010", day=20, department="Math", created_day=1),
        # Moved to another department and booking day (trends change in two departments).
        change("e-a031-2", 2001, "a031", day=7, department="Biology", created_day=9),
        # Removed: the appointment and its load vanish; its department's first booking day moves.
        change("e-a011-2", 2002, "a011", day=3, name="REMOVE", department="History"),
        change("e-a020-2", 2003, "a020", day=4, name="REMOVE"),
        # The broken image of a015 is fixed (its quarantine row leaves day 1's partition).
        change("e-a015-2", 2004, "a015", day=5, department="Biology", created_day=1),
        # A valid appointment breaks (a quarantine row appears in day 11's partition).
        change("e-a052-2", 2005, "a052", day=8, status="lost", department="Biology", created_day=5),
        # A new booking.
        change("e-new-1", 1, "anew", day=12, created_day=11, name="INSERT", department="History"),
        # An older change that loses to the current winner: nothing moves.
        change("e-a060-0", 1, "a060", day=30, created_day=6),
        "[]",
    ]
    write(root, "2026-09-11", "part-0", lines)
    # A copy of an event already read, delivered late into an earlier folder: rule 2 keeps the earliest copy.
    write(root, "2026-09-02", "part-late", [change("e-a070-1", 700, "a070", day=9, created_day=7, name="INSERT")])


def gate_row_counts(report: Path) -> dict:
    """Each frame's rows as its gate report gives them (the "of N rows" of its checks, one figure per frame)."""
    counts = {}
    for result in json.loads(report.read_text())["results"]:
        found = re.search(r" of (\d+) rows", result["details"]) if result["name"].endswith("_not_null") else None
        if found:
            counts.setdefault(result["frame"], set()).add(int(found.group(1)))
    assert all(len(values) == 1 for values in counts.values()), counts
    return {frame: values.pop() for frame, values in counts.items()}


def test_a_night_of_reschedules_and_removals_equals_a_full_run(spark, tmp_path):
    source = tmp_path / "in"
    history(source)
    nightly = tmp_path / "nightly"
    summary = run(spark, source, nightly, timezone=ZONE)
    assert summary.mode == "full" and summary.published
    before = {p: os.stat(p).st_ino for p in (nightly / "appointments").resolve().rglob("*.parquet")}
    base_files = {os.stat(p).st_ino for p in nightly.resolve().rglob("*.parquet")}

    night(source)
    summary = run(spark, source, nightly, timezone=ZONE)
    assert summary.mode == "incremental" and summary.files_read == 2 and summary.published, summary.lines()
    assert summary.quality.startswith("quality gate passed"), summary.quality
    # The gate took each frame's rows from the jobs that made it: they are the frame's own. The night's valid
    # lines are its eight changes and the late copy ("[]" is rejected), one winner per appointment whose winner
    # they change (not a060's: its change loses), and for each table the rows of the files this run wrote
    # (carried files are links to the current ones).
    written = {
        name: sum(pq.read_metadata(p).num_rows for p in (nightly / name).resolve().rglob("*.parquet") if os.stat(p).st_ino not in base_files)
        for name in TABLES
    }
    assert all(written.values()), written
    assert gate_row_counts(nightly / "_runs" / summary.run_id / "quality.json") == {**written, "change_log": 9, "snapshot": 8}

    full = tmp_path / "full"
    assert run_ungated(spark, source, full, timezone=ZONE, full=True).rows == summary.rows
    assert_same_tables(spark, nightly, full)

    # The appointments whose winner changed had rows on 09-03 .. 09-05, 09-07 and 09-09 (and move to 09-20 and
    # 09-12; a060, on 09-08, keeps its winner): the other dates' partitions are the current version's files,
    # carried as hard links.
    after = {os.stat(p).st_ino for p in (nightly / "appointments").resolve().rglob("*.parquet")}
    carried = sorted(Path(p).parent.name for p, inode in before.items() if inode in after)
    assert carried == [f"appointment_date=2026-09-{day}" for day in ("06", "08", "10", "11")]


def test_a_nights_trends_read_the_dates_its_booking_days_reach_and_no_others(spark, tmp_path):
    """A booking day the night reaches counts every appointment booked on it, also one on a date the night does not
    touch (the state keeps each booking day's first and last appointment date); a date no reached day has is not
    read."""
    source, out = tmp_path / "in", tmp_path / "out"
    write(source, "2026-09-01", "part-0", [
        # Booked on 09-01: p1 for 09-25 (never touched again), p2 for 09-03.
        change("e-p1-1", 1, "p1", day=25, created_day=1, name="INSERT"),
        change("e-p2-1", 2, "p2", day=3, created_day=1, name="INSERT"),
        # Booked on 09-02, a day the night does not reach: for 09-28 and 09-04.
        change("e-q-1", 3, "q", day=28, created_day=2, name="INSERT"),
        change("e-r-1", 4, "r", day=4, created_day=2, name="INSERT"),
    ])
    assert run(spark, source, out, timezone=ZONE).mode == "full"
    # Tonight p2 moves to 09-05; it was booked on 09-01, whose appointments lie on 09-03 .. 09-25.
    write(source, "2026-09-02", "part-0", [change("e-p2-2", 10, "p2", day=5, created_day=1)])
    summary = run(spark, source, out, timezone=ZONE)
    assert summary.mode == "incremental" and summary.published, summary.lines()
    # Of the dates 09-03, 09-04, 09-05 (new), 09-25 and 09-28: all but 09-28.
    assert summary.trends_read == [4, 5], summary.lines()
    full = tmp_path / "full"
    run_ungated(spark, source, full, timezone=ZONE, full=True)
    assert_same_tables(spark, out, full)


def test_the_emr_code_path_carries_partitions_too_and_a_rerun_changes_nothing(spark, tmp_path, monkeypatch):
    """Through Hadoop's FileSystem API (EMRFS on a cluster), partitions are carried by FileUtil copies."""
    monkeypatch.setenv("ADVISING_STORAGE", "hadoop")
    source = tmp_path / "in"
    history(source)
    out = tmp_path / "out"
    run_ungated(spark, source, out, timezone=ZONE, as_of=dt.date(2026, 9, 10))
    night(source)
    first = run_ungated(spark, source, out, timezone=ZONE)
    again = run_ungated(spark, source, out, timezone=ZONE)
    assert first.mode == "incremental" and again.mode == "up-to-date" and again.rows == first.rows
    full = tmp_path / "full"
    run_ungated(spark, source, full, timezone=ZONE, full=True)
    assert_same_tables(spark, out, full)


def dictionary_columns(folder) -> set:
    """The columns stored with a Parquet dictionary in any data file below `folder` (at least one file there)."""
    files = list(Path(folder).rglob("*.parquet"))
    assert files, f"no Parquet file below {folder}"
    found = set()
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                chunk = metadata.row_group(group).column(column)
                if chunk.dictionary_page_offset is not None:
                    found.add(chunk.path_in_schema)
    return found


def test_nights_add_generations_to_the_state_until_one_merges_them_and_still_equal_a_full_run(spark, tmp_path, monkeypatch):
    """The state grows by one generation a night; an appointment's winner is its newest generation's row
    (older rows it shadows are not counted as duplicates), and the night that finds MAX_GENERATIONS merges
    them into one, its own generation beside it."""
    from jobs import incremental

    monkeypatch.setattr(incremental, "MAX_GENERATIONS", 4)
    source, out = tmp_path / "in", tmp_path / "out"
    history(source)
    run_ungated(spark, source, out, timezone=ZONE)
    generations = lambda: sorted(p.name for p in (out / "_current" / "_state" / "changes").iterdir() if p.is_dir())
    assert generations() == ["generation=0"]
    # The winners keep rule 5's verdict, typed columns and record, not the image text (CHECKED_CHANGE_COLUMNS).
    state_files = lambda: (out / "_current" / "_state" / "changes").rglob("*.parquet")
    state_columns = lambda: {name for path in state_files() for name in pq.read_schema(path).names}
    assert "new_image" not in state_columns() and {"reason", "record", "status", "start_time"} <= state_columns()
    # Winners are written without Parquet dictionaries (jobs.state.winners_writer); the tables keep them.
    assert dictionary_columns(out / "_current" / "_state" / "changes") == set()
    assert "status" in dictionary_columns(out / "_current" / "appointments")

    # A night whose one change of a060 loses to its winner (an older change) changes nothing: no partition of any
    # table is recomputed, and its generation is empty.
    write(source, "2026-09-12", "part-0", [change("e-a060-0", 1, "a060", day=30, created_day=6)])
    summary = run_ungated(spark, source, out, timezone=ZONE)
    assert summary.mode == "incremental" and summary.touched == 0 and summary.duplicates == 0, summary.lines()
    assert [summary.recomputed[name][0] for name in TABLES] == [0] * len(TABLES), summary.recomputed
    # Two nights each move a060: its new winner is written in each night's generation, and the second night
    # must take its old winner from the first's (the row it shadows in generation 0 is no duplicate).
    for ingest_date, event_id, seq in (("2026-09-13", "e-a060-2", 3000), ("2026-09-14", "e-a060-3", 3001)):
        write(source, ingest_date, "part-0", [change(event_id, seq, "a060", day=seq - 2980, created_day=6)])
        summary = run_ungated(spark, source, out, timezone=ZONE)
        assert summary.mode == "incremental" and summary.touched == 1 and summary.duplicates == 0, summary.lines()
    assert generations() == ["generation=0", "generation=1", "generation=2", "generation=3"]
    assert summary.recomputed["state"] == [1, 4]
    assert dictionary_columns(out / "_current" / "_state" / "changes" / "generation=3") == set()

    night(source)
    summary = run_ungated(spark, source, out, timezone=ZONE)
    assert summary.mode == "incremental" and summary.recomputed["state"] == [2, 2]
    assert generations() == ["generation=0", "generation=1"]
    assert dictionary_columns(out / "_current" / "_state" / "changes") == set()
    assert "new_image" not in state_columns()
    full = tmp_path / "full"
    assert run_ungated(spark, source, full, timezone=ZONE, full=True).rows == summary.rows
    assert_same_tables(spark, out, full)


def test_a_night_whose_branch_fails_publishes_nothing_and_leaves_no_thread_writing(spark, tmp_path):
    """A night writes its tables side by side and checks them on the gate's thread: when one branch fails (here
    the current version's trends cannot be read), the run raises that error only once every branch and the gate
    have stopped, the current version stays, and the failed run's version is gone."""
    import threading

    from jobs.pipeline import QualityGateFailed

    source, out = tmp_path / "in", tmp_path / "out"
    history(source)
    base = run(spark, source, out, timezone=ZONE)
    night(source)
    for table in (out / "_current" / "booking_trends_daily").resolve().rglob("*.parquet"):
        os.unlink(table)  # a new file in its place: the link into the other versions stays intact
        table.write_bytes(b"not parquet")
    versions = sorted(p.name for p in (out / "_versions").iterdir())

    with pytest.raises(Exception) as failure:
        run(spark, source, out, timezone=ZONE)

    assert not isinstance(failure.value, QualityGateFailed)
    assert "booking_trends_daily" in str(failure.value)
    assert not [t.name for t in threading.enumerate() if t.name.startswith(("advising-night", "advising-gate"))]
    assert json.loads((out / "_current.json").read_text())["run_id"] == base.run_id
    assert sorted(p.name for p in (out / "_versions").iterdir()) == versions


def test_a_touched_appointment_left_in_a_carried_partition_fails_the_nights_gate(spark, tmp_path):
    """The whole-table uniqueness of a night: a row of a touched appointment that the night would carry
    forward (here planted into the current version's 09-06 partition, which the night does not recompute, as a
    move that forgot the old row would leave it) is a duplicate of its new row, and nothing is published."""
    import pyarrow as pa

    from jobs.pipeline import QualityGateFailed

    source, out = tmp_path / "in", tmp_path / "out"
    history(source)
    base = run(spark, source, out, timezone=ZONE)
    night(source)
    appointments = (out / "_current" / "appointments").resolve()
    (row,) = [r for r in pq.read_table(appointments).to_pylist() if r["appointment_id"] == "a010"]  # rescheduled tonight
    del row["appointment_date"]  # the partition column: the folder gives it
    carried = appointments / "appointment_date=2026-09-06"
    schema = pq.read_schema(next(carried.glob("*.parquet")))
    pq.write_table(pa.Table.from_pylist([row], schema=schema), carried / "part-planted.parquet")

    with pytest.raises(QualityGateFailed) as failure:
        run(spark, source, out, timezone=ZONE)

    assert "appointments.appointment_id_unique_whole_table (critical): 1 appointment_id" in str(failure.value)
    assert json.loads((out / "_current.json").read_text())["run_id"] == base.run_id
