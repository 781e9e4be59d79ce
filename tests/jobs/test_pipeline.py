"""End to end on local files: misuse, empty input, incremental == full (rule 6), reruns, stale partitions."""
import datetime as dt
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality

from advising.cli import main as cli
from advising.sample_data import generate
from jobs.config import RunConfig
from jobs.contract import TABLES
from common.errors import UsageError
from jobs.pipeline import run_pipeline

pytestmark = pytest.mark.slow


def run(spark, input_dir, output_dir, **kwargs):
    return run_pipeline(spark, RunConfig(input=str(input_dir), output=str(output_dir), **kwargs), log=lambda *_: None)


def run_ungated(spark, input_dir, output_dir, **kwargs):
    """Chains of runs skip the quality gate: tests/jobs/test_quality*.py cover it, and it would triple the time."""
    return run(spark, input_dir, output_dir, skip_quality=True, **kwargs)


def read_tables(spark, output_dir):
    return {name: spark.read.parquet(str(Path(output_dir) / name)) for name in TABLES}


def assert_same_tables(spark, left_dir, right_dir):
    left, right = read_tables(spark, left_dir), read_tables(spark, right_dir)
    for name in TABLES:
        assert_df_equality(left[name], right[name], ignore_row_order=True, ignore_nullable=True)


def file_hashes(output_dir):
    hashes = {}
    for name in TABLES:
        for path in sorted((Path(output_dir) / name).rglob("*")):
            if path.is_file():
                hashes[str(path.relative_to(output_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def write_log(root, ingest_date, name, records):
    folder = Path(root) / "appointments" / f"ingest_date={ingest_date}" / "shard-1"
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{name}.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(r) for r in records) + "\n")


def record(event_id, seq, appointment_id, start, status="BOOKED", name="INSERT"):
    image = {
        "appointment_id": appointment_id, "student_id": "s1", "advisor_id": "adv1", "department": "Math",
        "start_time": start, "duration_minutes": 30, "status": status,
        "created_at": "2026-09-01T08:00:00Z", "updated_at": "2026-09-01T08:00:00Z",
    }
    return {
        "event_id": event_id, "event_name": name, "sequence_number": seq,
        "approximate_creation_time": "2026-09-01T08:00:00Z", "table": "appointments",
        "keys": {"appointment_id": appointment_id}, "new_image": None if name == "REMOVE" else image, "old_image": None,
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "/nonexistent/advising-input"], "input path does not exist"),
        (["--as-of", "2026-13-01"], "--as-of is not a real calendar date"),
        (["--as-of", "yesterday"], "--as-of must be a date in YYYY-MM-DD form"),
        (["--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--input", "s3://advising-raw/raw"], "no filesystem connector for s3://"),
    ],
)
def test_misuse_is_one_line_and_exit_2(spark, tmp_path, capsys, args, message):
    (tmp_path / "in" / "appointments").mkdir(parents=True)
    base = {"--input": str(tmp_path / "in"), "--output": str(tmp_path / "out")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    code = cli(["run", *[item for pair in base.items() for item in pair]])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "appointments").exists()


def test_input_without_appointments_folder_is_refused(spark, tmp_path, capsys):
    (tmp_path / "in" / "advisors").mkdir(parents=True)
    assert cli(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 2
    assert "no appointments/ folder" in capsys.readouterr().err


def test_empty_input_publishes_empty_tables_with_the_contract_schema(spark, tmp_path):
    (tmp_path / "in" / "appointments").mkdir(parents=True)
    summary = run(spark, tmp_path / "in", tmp_path / "out")
    assert summary.published and summary.rows == {name: 0 for name in TABLES}
    for name, (schema, _) in TABLES.items():
        df = spark.read.parquet(str(tmp_path / "out" / name))
        assert df.count() == 0
        assert [(f.name, f.dataType) for f in df.schema.fields] == [(f.name, f.dataType) for f in schema.fields]


def test_duplicated_advisor_stops_the_run_before_publishing(spark, tmp_path):
    write_log(tmp_path / "in", "2026-09-01", "b1", [record("e1", "1", "a1", "2026-09-02T10:00:00Z")])
    (tmp_path / "in" / "advisors").mkdir()
    (tmp_path / "in" / "advisors" / "advisors.csv").write_text(
        'advisor_id,advisor_name,department,daily_capacity_minutes\nadv1,"Pat ""PJ"" Smith",Math,480\nadv1,Other,Math,300\n'
    )
    with pytest.raises(UsageError, match="advisor_id 'adv1' more than once"):
        run(spark, tmp_path / "in", tmp_path / "out")
    assert not any((tmp_path / "out" / name).exists() for name in TABLES)


def test_reschedule_leaves_no_stale_partition_and_rerun_changes_nothing(spark, tmp_path):
    write_log(tmp_path / "in", "2026-09-01", "b1", [record("e1", "100000000000000000001", "a1", "2026-09-02T10:00:00Z")])
    run(spark, tmp_path / "in", tmp_path / "out", as_of=dt.date(2026, 9, 1))
    assert (tmp_path / "out" / "appointments" / "appointment_date=2026-09-02").is_dir()
    write_log(tmp_path / "in", "2026-09-02", "b2", [record("e2", "100000000000000000002", "a1", "2026-09-05T10:00:00Z", name="MODIFY")])
    summary = run(spark, tmp_path / "in", tmp_path / "out")
    assert summary.mode == "incremental" and summary.files_read == 1
    partitions = sorted(p.name for p in (tmp_path / "out" / "appointments").iterdir() if p.is_dir())
    assert partitions == ["appointment_date=2026-09-05"]
    before = file_hashes(tmp_path / "out")
    again = run(spark, tmp_path / "in", tmp_path / "out")
    assert again.mode == "up-to-date" and file_hashes(tmp_path / "out") == before


@pytest.fixture(scope="module")
def sample_log(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample") / "in"
    generate(root, appointments=250, seed=11, days=8)
    return root


def change_log_files(root):
    return sorted(p for p in (Path(root) / "appointments").rglob("*") if p.is_file())


def test_incremental_runs_equal_one_full_run(spark, sample_log, tmp_path):
    """Rule 6: split by ingest_date (--as-of), then by file arrival including files that land in folders
    already read; every chain ends equal to one full run."""
    timezone = "America/Chicago"
    files = change_log_files(sample_log)
    dates = sorted({p.relative_to(sample_log / "appointments").parts[0].split("=")[1] for p in files})

    by_date = tmp_path / "by_date"
    for day in (dates[1], dates[len(dates) // 2], dates[-1]):
        run_ungated(spark, sample_log, by_date, timezone=timezone, as_of=dt.date.fromisoformat(day))

    # Arrival order: every other file first, the rest later (so later files land in folders already read).
    arriving = tmp_path / "arriving"
    by_arrival = tmp_path / "by_arrival"
    for batch in (files[::2], files[1::2]):
        for source in batch:
            target = arriving / source.relative_to(sample_log)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        summary = run_ungated(spark, arriving, by_arrival, timezone=timezone)
    assert summary.mode == "incremental" and summary.files_read == len(files[1::2])
    shutil.copytree(sample_log / "advisors", arriving / "advisors")
    # Advisors arrived: every table may change, so the run rebuilds from the whole log.
    summary = run_ungated(spark, arriving, by_arrival, timezone=timezone)
    assert summary.mode == "full" and "advisors" in summary.reason and summary.published

    full_same_input = tmp_path / "full_arriving"
    run_ungated(spark, arriving, full_same_input, timezone=timezone, full=True)
    assert_same_tables(spark, by_arrival, full_same_input)

    full = tmp_path / "full"
    summary = run(spark, sample_log, full, timezone=timezone, full=True)
    assert summary.rows["appointments"] > 100 and summary.rows["quarantine"] > 0
    assert_same_tables(spark, by_date, full)


def test_local_listing_equals_the_hadoop_listing_and_a_run_reads_awkward_names(spark, tmp_path, monkeypatch):
    """Local roots are listed with `os` (no Spark job); the EMR path lists through Hadoop. Both must give the
    same files, URIs and times, including names Hadoop quotes, and the run must find every line's file."""
    from jobs.storage import Storage

    root = tmp_path / "in put é"
    day = root / "appointments" / "ingest_date=2026-09-01"
    day.mkdir(parents=True)
    line = (
        '{"event_id":"e%d","event_name":"INSERT","sequence_number":"%d","approximate_creation_time":"2026-09-01T10:00:00Z",'
        '"keys":{"appointment_id":"a%d"},"new_image":{"appointment_id":"a%d","student_id":"s","advisor_id":"v",'
        '"department":"D","status":"BOOKED","start_time":"2026-09-02T10:00:00Z","created_at":"2026-09-01T10:00:00Z",'
        '"updated_at":"2026-09-01T10:00:00Z","duration_minutes":30}}\n'
    )
    names = ["plain.jsonl", "with space.jsonl", "per%cent.jsonl", "plus+and space.jsonl", "ünï.jsonl", "_x=1.jsonl"]
    for number, name in enumerate(names):
        # Each file also holds a line rule 1 rejects: the quarantine shows which file it came from.
        (day / name).write_text(line % (number, number, number, number) + '{"event_id":"bad%d"}\n' % number)
    for hidden in ("_SUCCESS", ".hidden.jsonl", "part.jsonl._COPYING_"):
        (day / hidden).write_text(line % (9, 9, 9, 9))
    (root / "appointments" / "_tmp").mkdir()
    (root / "appointments" / "_tmp" / "x.jsonl").write_text(line % (8, 8, 8, 8))

    local = Storage(spark).list_files(str(root / "appointments"))
    monkeypatch.setenv("ADVISING_STORAGE", "hadoop")
    hadoop = Storage(spark).list_files(str(root / "appointments"))
    monkeypatch.delenv("ADVISING_STORAGE")

    assert sorted(local, key=lambda f: f.path) == sorted(hadoop, key=lambda f: f.path)
    assert sorted(Path(f.path).name for f in local) == sorted(names)

    # Every line is read and kept, with the path and ingest date of the file it came from, as listed, whichever
    # way the files were listed.
    for storage, out in (("local", tmp_path / "out"), ("hadoop", tmp_path / "out-hadoop")):
        monkeypatch.setenv("ADVISING_STORAGE", storage)
        summary = run_ungated(spark, root, out)
        assert (summary.events_read, summary.rows["appointments"], summary.quarantined) == (2 * len(names), len(names), len(names))
        quarantine = read_tables(spark, out)["quarantine"].select("source_file", "ingest_date").collect()
        assert sorted((row["source_file"], row["ingest_date"]) for row in quarantine) == sorted(
            (f.path, dt.date(2026, 9, 1)) for f in local
        )
