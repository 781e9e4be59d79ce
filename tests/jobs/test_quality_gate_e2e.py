"""End to end: the quality gate stops a run that lost most of its input, and publishes nothing.

Publish a full run of a sample change log, delete most of its files, run again: the pipeline notices
the removed input and rebuilds, the gate fails on the appointments row count, the run exits non-zero,
and every published file is byte-for-byte what it was. `--skip-quality` on the same input publishes,
and says loudly that it skipped the gate.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from advising.sample_data import generate
from jobs.compaction import IMAGE_REASONS
from jobs.config import RunConfig
from jobs.contract import TABLES
from jobs.pipeline import main, run_pipeline

pytestmark = pytest.mark.slow


def published_files(output: Path) -> dict:
    """sha256 of every file of every published table (not the private `_` names: `_versions`, `_runs`, ...)."""
    hashes = {}
    for table in sorted(p for p in output.iterdir() if not p.name.startswith("_")):
        for path in sorted(p for p in table.rglob("*") if p.is_file()):
            hashes[str(path.relative_to(output))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def remove_most_files(root: Path, keep_every: int) -> int:
    files = sorted((root / "appointments").rglob("*.jsonl*"))
    removed = [f for i, f in enumerate(files) if i % keep_every]
    for path in removed:
        path.unlink()
    return len(removed)


def data_row_counts(spark, source: Path, output: Path, run_id: str) -> dict:
    """The rows of every frame the gate validates, counted from the log and the published version: the snapshot
    is the state's winners; the valid changes are the non-blank lines less the line rejects."""
    from pyspark.sql import functions as F

    tables = {name: spark.read.parquet(str(output / name)).count() for name in TABLES}
    snapshot = spark.read.parquet(str(output / "_versions" / run_id / "_state" / "changes")).count()
    image_rejects = spark.read.parquet(str(output / "quarantine")).filter(F.col("reason").isin(*IMAGE_REASONS)).count()
    lines = 0
    for path in (source / "appointments").rglob("*.jsonl*"):
        with (gzip.open(path, "rt") if path.suffix == ".gz" else path.open()) as handle:
            lines += sum(1 for line in handle if line.strip())
    return {
        **tables,
        "snapshot": snapshot,
        "change_log": lines - (tables["quarantine"] - image_rejects),
    }


@pytest.mark.timeout(1200)
def test_lost_input_fails_the_gate_and_leaves_published_tables_untouched(spark, tmp_path, capsys):
    source, output = tmp_path / "input", tmp_path / "tables"
    generate(source, appointments=400, seed=3, days=15)
    args = ["--input", str(source), "--output", str(output)]

    first = run_pipeline(spark, RunConfig.from_args(args), log=lambda line: None)
    assert first.published and first.rows["appointments"] > 300
    before = published_files(output)
    assert set(p.split("/")[0] for p in before) == set(TABLES)
    first_report = json.loads((output / "_runs" / first.run_id / "quality.json").read_text())
    assert first_report["passed"] is True
    # A full run's gate takes each frame's row count from the job that wrote it: the data's own figures.
    assert first_report["row_counts"] == data_row_counts(spark, source, output, first.run_id)

    assert remove_most_files(source, keep_every=5) > 0  # 80% of the change-log files
    capsys.readouterr()

    status = main(args)

    err = capsys.readouterr().err
    assert status == 1
    assert "quality gate failed, nothing published" in err
    assert "appointments.row_count_vs_previous (critical)" in err
    assert f"vs {first.rows['appointments']} previously" in err
    assert published_files(output) == before
    (failed_run,) = [p for p in (output / "_runs").iterdir() if p.name != first.run_id]
    report = json.loads((failed_run / "quality.json").read_text())
    assert report["passed"] is False
    assert "appointments.row_count_vs_previous" in report["critical_failures"]
    assert not (failed_run / "manifest.json").exists()

    # --full rebuilds from the log but still compares with the last publish.
    assert main(args + ["--full"]) == 1
    assert "appointments.row_count_vs_previous (critical)" in capsys.readouterr().err
    assert published_files(output) == before

    status = main(args + ["--skip-quality"])

    out = capsys.readouterr().out
    assert status == 0
    assert "WARNING: QUALITY GATE SKIPPED (--skip-quality)" in out
    assert "published" in out
    after = published_files(output)
    assert after != before and set(p.split("/")[0] for p in after) == set(TABLES)
