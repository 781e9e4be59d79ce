"""`advising reconcile`: a table export against the change log at the export's time (local Spark)."""
from __future__ import annotations

import calendar
import json
from pathlib import Path

import pytest
from stream_sink_support import stream_record
from test_stream_sink_backfill import EXPORT_ID, appointment, export_files, write_local

from advising.cli import main as advising
from functions.stream_sink import records

pytestmark = pytest.mark.slow
BEFORE = calendar.timegm((2026, 1, 5, 9, 0, 0)) + 0.0  # the export is at 2026-01-06T00:00:00.250Z
AFTER = calendar.timegm((2026, 1, 6, 10, 0, 0)) + 0.0
IDS = ["a-1", "a-2", "a-3", "a-4"]


def write_log(root: Path, changes) -> Path:
    """The change log under `root`, one object per day, as the sink writes it."""
    by_day = {}
    for n, (event, key, created, item) in enumerate(changes):
        record = stream_record(10**21 + n, event, key, created, new=item)
        by_day.setdefault(records.format_timestamp(records.epoch_to_datetime(created))[:10], []).append(records.convert(record))
    for day, lines in by_day.items():
        target = root / "appointments" / f"ingest_date={day}" / "appointments-x" / "log.jsonl.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(records.encode_lines(lines))
    return root


def table_history(skip=()):
    """Each appointment inserted before the export; a-1 changed after it (not part of the export's state)."""
    changes = [("INSERT", key, BEFORE + n, appointment(key)) for n, key in enumerate(IDS) if key not in skip]
    return changes + [("MODIFY", "a-1", AFTER, appointment("a-1", status="COMPLETED"))]


def reconcile(export, log, *extra) -> int:
    return advising(["reconcile", "--export", str(export), "--input", str(log), "--master", "local[1]", *extra])


def test_a_log_that_agrees_exits_0_whatever_changed_after_the_export(spark, tmp_path, capsys):
    export = write_local(tmp_path / "export", export_files([[appointment(key) for key in IDS]]))
    log = write_log(tmp_path / "log", table_history())
    assert reconcile(export, log) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "reconcile: 4 in the export, 4 in the change log at 2026-01-06T00:00:00.250000Z: 0 missing, 0 differing, 0 extra"
    )


def test_removed_changes_are_missing_an_edited_item_differs_and_a_stray_one_is_extra(spark, tmp_path, capsys):
    # GIVEN a log that lost a-2 and a-3, holds a-5 the table no longer has, and an export where a-4 was edited
    items = [appointment(key) for key in IDS[:3]] + [appointment("a-4", status="CANCELLED", photo="AP8=")]
    export = write_local(tmp_path / "export", export_files([items[:2], items[2:]]))
    log = write_log(tmp_path / "log", table_history(skip={"a-2", "a-3"}) + [("INSERT", "a-5", BEFORE, appointment("a-5"))])
    report = tmp_path / "report.json"
    # WHEN reconciled
    status = reconcile(export, log, "--report", str(report))
    # THEN exactly those, in one line and in the report, and exit status 3
    assert status == 3
    assert capsys.readouterr().out.splitlines()[-1].endswith("4 in the export, 3 in the change log at 2026-01-06T00:00:00.250000Z: 2 missing, 1 differing, 1 extra")
    assert json.loads(report.read_text()) == {
        "export_time": "2026-01-06T00:00:00.250000Z", "missing": ["a-2", "a-3"], "differing": ["a-4"], "extra": ["a-5"]
    }


def test_repair_then_run_makes_the_next_reconcile_agree(spark, tmp_path, capsys):
    export = write_local(tmp_path / "export", export_files([[appointment(key) for key in IDS]]))
    log = write_log(tmp_path / "log", table_history(skip={"a-3"}))
    assert reconcile(export, log, "--repair") == 3
    out = capsys.readouterr().out
    assert "1 missing" in out and f"backfill-{EXPORT_ID}/repair.jsonl.gz" in out

    assert advising(["run", "--input", str(log), "--output", str(tmp_path / "out"), "--skip-quality"]) == 0
    assert reconcile(export, log) == 0
    assert sorted(row.appointment_id for row in spark.read.parquet(str(tmp_path / "out" / "appointments")).collect()) == IDS


@pytest.mark.parametrize(
    "make_export, message",
    [
        (lambda root: root / "nowhere", "--export: no manifest-summary.json under"),
        (lambda root: _without(write_local(root, export_files([[appointment("a-1")]])), "manifest-files.json"), "--export: no manifest-files.json under"),
        (lambda root: _without(write_local(root, export_files([[appointment("a-1")]])), "manifest-summary.json"), "--export: no manifest-summary.json under"),
    ],
    ids=["no-export", "no-files-manifest", "no-summary"],
)
def test_misuse_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, make_export, message):
    log = write_log(tmp_path / "log", table_history())
    before = sorted(log.rglob("*"))
    assert reconcile(make_export(tmp_path / "export"), log, "--repair") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("advising reconcile: error: ") and message in err
    assert sorted(log.rglob("*")) == before


def _without(folder: Path, name: str) -> Path:
    (folder / name).unlink()
    return folder
