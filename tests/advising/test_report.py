"""`advising run` is quiet and `advising report` draws every chart, end to end in a real browser.

One pipeline run (a subprocess, as a person types it) over a small sample feeds the quietness check and
the report; the report is opened in Debian's chromium (headless, through playwright-core) and the page
itself says what it drew. Missing and empty tables, and the upload to S3 (moto server), are checked too.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from advising.cli import main as cli
from advising.report import build_report
from advising.sample_data import generate

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
BROWSER_SCRIPT = Path(__file__).with_name("report_in_browser.mjs")
CHARTS = ("utilization", "bookings", "cancellation", "no_show", "lead_time", "quarantine", "runs")
# Every line `advising run` prints: the stage lines of jobs/progress.py and the summary of RunSummary.lines().
OUR_LINE = re.compile(
    r"(plan|read_parse|compact|tables|quality|publish): (started|done in \d+\.\d s)"
    r"|run \d{8}T\d{6}Z-[0-9a-f]{6}: full \(.*\)"
    r"|  files read \d+, ignored \d+; events read \d+, duplicates \d+, quarantined \(table\) \d+"
    r"|  rows: appointments \d+, advisor_daily_load \d+, booking_trends_daily \d+, quarantine \d+"
    r"|  seconds: .*"
    r"|  quality gate passed: .*"
    r"|  published"
)


def advising() -> str:
    return str(Path(sys.executable).with_name("advising"))


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is not installed: scripts/run-tests.sh installs it (apt-get install chromium)"
    return path


def open_in_browser(report: Path, screenshot: Path, tmp_path: Path) -> dict:
    node = shutil.which("node")
    assert node, "node is not on PATH"
    done = subprocess.run(
        [node, str(BROWSER_SCRIPT), str(report), str(screenshot), str(tmp_path / "chromium-profile"), chromium()],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """GIVEN a small sample change log, WHEN `advising run` publishes it: its output and the tables."""
    root = tmp_path_factory.mktemp("report")
    generate(root / "in", appointments=400, seed=5, days=21)
    done = subprocess.run(
        [advising(), "run", "--input", str(root / "in"), "--output", str(root / "tables")],
        capture_output=True, text=True, timeout=900,
    )
    return done, root / "tables"


@pytest.mark.slow
def test_run_prints_only_the_pipelines_own_lines(sample_run):
    done, _ = sample_run
    assert done.returncode == 0, done.stderr
    # Spark, Hadoop and py4j write to stderr (log4j's console appender, the JVM banner): nothing there.
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert [line for line in lines if not OUR_LINE.fullmatch(line)] == []
    started = [line.split(":")[0] for line in lines if line.endswith("started")]
    # plan runs in two steps (listing, then the decision under the output's lease): two line pairs
    assert started == ["plan", "plan", "read_parse", "compact", "tables", "quality", "publish"]


@pytest.mark.slow
def test_verbose_gives_spark_its_own_logging_back(tmp_path):
    # The control for the test above: the same command with --verbose shows what quiet mode removes.
    (tmp_path / "in" / "appointments").mkdir(parents=True)
    done = subprocess.run(
        [advising(), "run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--verbose", "--skip-quality"],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert 'Setting default log level to "WARN".' in done.stderr


@pytest.mark.slow
def test_report_of_a_run_draws_every_chart_offline_in_a_browser(sample_run, tmp_path):
    _, tables = sample_run
    ARTIFACTS.mkdir(exist_ok=True)
    report = tmp_path / "report.html"
    written = subprocess.run(
        [advising(), "report", "--tables", str(tables), "--out", str(report)], capture_output=True, text=True, timeout=120
    )
    assert written.returncode == 0 and written.stdout.startswith(f"report: {report} (7 of 7 charts with data")

    page = open_in_browser(report, ARTIFACTS / "report.png", tmp_path)

    assert page["consoleErrors"] == [] and page["pageErrors"] == []
    assert page["requests"] == []
    assert [chart["key"] for chart in page["charts"]] == list(CHARTS)
    for chart in page["charts"]:
        assert chart["drawn"] and not chart["empty"], chart["key"]
        assert chart["points"] > 0 and chart["shapes"] > 5, chart
        assert chart["width"] > 300 and chart["height"] > 300, chart
    header = page["header"]
    assert header["appointments"] != "0" and header["kind"] == "full (no previous state)"
    assert header["quality gate"].startswith("quality gate passed")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}", header["date range"])
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000


def write_empty_table(folder: Path, schema: pa.Schema) -> None:
    """What the pipeline publishes for a table without rows: one Parquet file with every column."""
    folder.mkdir(parents=True)
    pq.write_table(schema.empty_table(), folder / "part-00000.parquet")


def test_missing_and_empty_tables_give_a_report_that_says_so(tmp_path):
    # GIVEN an output folder with an empty appointments table and nothing else
    tables = tmp_path / "tables"
    write_empty_table(
        tables / "appointments",
        pa.schema([("advisor_id", pa.string()), ("department", pa.string()), ("status", pa.string()),
                   ("lead_time_hours", pa.float64()), ("appointment_date", pa.date32())]),
    )
    # WHEN the report is built
    assert cli(["report", "--tables", str(tables), "--out", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    # THEN every chart says why it is missing, and the page still opens cleanly in a browser
    charts = {chart.key: chart for chart in build_report(str(tables)).charts}
    assert {key: chart.option for key, chart in charts.items()} == {key: None for key in CHARTS}
    assert charts["no_show"].empty == "No data: the appointments table is empty."
    assert charts["bookings"].empty == "No data: the booking_trends_daily table is missing under the tables folder."
    assert charts["runs"].empty == "No data: no run manifest under the tables folder (_runs/)."
    for chart in charts.values():
        assert chart.empty in page
    shown = open_in_browser(tmp_path / "report.html", tmp_path / "empty.png", tmp_path)
    assert shown["consoleErrors"] == [] and shown["pageErrors"] == [] and shown["requests"] == []
    assert [(c["key"], c["empty"]) for c in shown["charts"]] == [(key, True) for key in CHARTS]


def test_tables_folder_that_does_not_exist_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli(["report", "--tables", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("advising report: error: --tables") and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_report_goes_to_the_reports_bucket(aws_env, tmp_path):
    # GIVEN the reports bucket and some tables (empty ones are enough for the transport)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="advising-reports")
    write_empty_table(tmp_path / "tables" / "quarantine", pa.schema([("reason", pa.string()), ("ingest_date", pa.date32())]))
    # WHEN the report is written to s3://
    uri = "s3://advising-reports/reports/advising/latest.html"
    assert cli(["report", "--tables", str(tmp_path / "tables"), "--out", uri]) == 0
    # THEN it is there, as HTML, and it is the whole page
    got = s3.get_object(Bucket="advising-reports", Key="reports/advising/latest.html")
    body = got["Body"].read().decode("utf-8")
    assert got["ContentType"] == "text/html; charset=utf-8"
    assert body.startswith("<!DOCTYPE html>") and body.endswith("</html>\n") and "No data: the quarantine table is empty." in body


def test_upload_to_a_missing_bucket_is_one_line_and_exit_2(aws_env, tmp_path, capsys):
    (tmp_path / "tables").mkdir()
    assert cli(["report", "--tables", str(tmp_path / "tables"), "--out", "s3://no-such-bucket/reports/x.html"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("advising report: error: cannot upload the report to s3://no-such-bucket/reports/x.html")
    assert err.count("\n") == 1
