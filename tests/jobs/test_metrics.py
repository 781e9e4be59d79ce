"""jobs/metrics.py: the run's summary as CloudWatch embedded-metric-format lines, checked against the EMF
specification's rules, and printed by a real run (jobs.pipeline.main) on stdout."""
from __future__ import annotations

import json

from advising.sample_data import generate
from jobs.metrics import NAMESPACE, SUCCESSFUL_RUNS, emf_lines
from jobs.pipeline import RunSummary, main

NOW_MS = 1_764_633_600_000  # 2025-12-02T00:00:00Z
# The units CloudWatch accepts (PutMetricData's StandardUnit), the ones EMF may name.
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}


def check_emf(line: str) -> dict:
    """One EMF document, validated by the specification's rules; returns {metric name: value}."""
    doc = json.loads(line)
    assert isinstance(doc, dict) and "\n" not in line
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000  # milliseconds since the epoch
    [directive] = meta["CloudWatchMetrics"]
    assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 1024
    assert 1 <= len(directive["Dimensions"]) and all(1 <= len(ds) <= 30 for ds in directive["Dimensions"])
    for dimension_set in directive["Dimensions"]:
        for name in dimension_set:
            assert isinstance(doc[name], str) and doc[name], name  # every dimension is a string member
    assert 1 <= len(directive["Metrics"]) <= 100
    values = {}
    for metric in directive["Metrics"]:
        assert set(metric) <= {"Name", "Unit", "StorageResolution"} and metric["Unit"] in UNITS
        value = doc[metric["Name"]]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), metric
        values[metric["Name"]] = value
    return {"namespace": directive["Namespace"], "dimensions": directive["Dimensions"], **values,
            **{k: v for k, v in doc.items() if k not in values and k != "_aws"}}


def summary(**values) -> RunSummary:
    base = dict(run_id="r1", mode="incremental", reason="3 new file(s)", files_read=3, events_read=120, duplicates=4,
                quarantined=2, rows={"appointments": 100, "quarantine": 2}, stage_seconds={"plan": 1.25, "tables": 2.5},
                published=True, quality="quality gate passed: 40 expectations checked, 0 warning(s)")
    base.update(values)
    return RunSummary(**base)


def test_a_published_run_is_one_successful_run_with_its_counts_and_one_line_per_table():
    run, *tables = [check_emf(line) for line in emf_lines(summary(), NOW_MS)]

    assert run["namespace"] == NAMESPACE and run["dimensions"] == [["Pipeline"]] and run["Pipeline"] == "advising"
    assert {k: run[k] for k in (SUCCESSFUL_RUNS, "FailedRuns", "QualityGateFailed", "EventsRead", "Duplicates",
                                "Quarantined", "Seconds", "GateVerdict", "RunId", "Mode")} == {
        SUCCESSFUL_RUNS: 1, "FailedRuns": 0, "QualityGateFailed": 0, "EventsRead": 120, "Duplicates": 4,
        "Quarantined": 2, "Seconds": 3.75, "GateVerdict": "passed", "RunId": "r1", "Mode": "incremental",
    }
    assert [(t["dimensions"], t["Table"], t["Rows"]) for t in tables] == [
        ([["Pipeline", "Table"]], "appointments", 100), ([["Pipeline", "Table"]], "quarantine", 2)
    ]


def test_a_run_the_gate_stopped_is_a_failed_run():
    [run] = [check_emf(line) for line in emf_lines(None, NOW_MS)]
    assert (run[SUCCESSFUL_RUNS], run["FailedRuns"], run["QualityGateFailed"], run["GateVerdict"]) == (0, 1, 1, "failed")


def test_current_tables_and_a_skipped_gate_still_count_as_successful_nights():
    current = check_emf(emf_lines(summary(mode="up-to-date", published=False, quality=""), NOW_MS)[0])
    skipped = check_emf(emf_lines(summary(quality="QUALITY GATE SKIPPED (--skip-quality): tables published without validation"), NOW_MS)[0])
    assert (current[SUCCESSFUL_RUNS], current["GateVerdict"]) == (1, "not_run")
    assert (skipped[SUCCESSFUL_RUNS], skipped["GateVerdict"]) == (1, "skipped")


def test_the_spark_submit_entry_prints_the_metric_lines_after_the_summary(spark, tmp_path, capsys):
    source, output = tmp_path / "input", tmp_path / "tables"
    generate(source, appointments=200, seed=15, days=5)

    assert main(["--input", str(source), "--output", str(output)]) == 0

    out = capsys.readouterr().out.splitlines()
    emf = [check_emf(line) for line in out if line.startswith("{")]
    text = [line for line in out if not line.startswith("{")]
    assert out[-len(emf):] == [line for line in out if line.startswith("{")]  # after the summary
    run, *tables = emf
    assert run[SUCCESSFUL_RUNS] == 1 and run["GateVerdict"] == "passed" and run["EventsRead"] > 0
    rows_line = next(line for line in text if line.startswith("  rows: "))
    assert rows_line == "  rows: " + ", ".join(f"{t['Table']} {t['Rows']}" for t in tables)
    assert f"events read {run['EventsRead']}," in " ".join(text)
