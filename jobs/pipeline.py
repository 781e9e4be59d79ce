"""The whole run: plan -> read & parse -> compact -> tables to staging -> quality gate -> publish.

Used by `advising run` (local mode) and by the spark-submit entry (jobs/main.py) on EMR. Reading,
writing and state live here and in jobs.storage / jobs.state; the rules live in the pure modules
(parsing, compaction, aggregates).
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

from jobs.config import RunConfig
from common.errors import UsageError
from jobs.storage import FileInfo, Storage, join, local_path, normalize_root

CONTRACT_VERSION = "1"
_INGEST_FOLDER = re.compile(r"^/ingest_date=(\d{4}-\d{2}-\d{2})/")
_CHANGE_LOG_SUFFIXES = (".jsonl.gz", ".jsonl")


class QualityGateFailed(Exception):
    """A critical expectation failed: nothing was published."""


@dataclass
class RunSummary:
    run_id: str
    mode: str  # full | incremental | up-to-date
    reason: str
    files_read: int = 0
    files_ignored: int = 0
    events_read: int = 0
    duplicates: int = 0
    quarantined: int = 0
    rows: Dict[str, int] = field(default_factory=dict)
    stage_seconds: Dict[str, float] = field(default_factory=dict)
    published: bool = False
    quality: str = ""

    def lines(self) -> List[str]:
        out = [
            f"run {self.run_id}: {self.mode} ({self.reason})",
            f"  files read {self.files_read}, ignored {self.files_ignored}; events read {self.events_read}, "
            f"duplicates {self.duplicates}, quarantined (table) {self.quarantined}",
        ]
        if self.rows:
            out.append("  rows: " + ", ".join(f"{name} {count}" for name, count in self.rows.items()))
        out.append("  seconds: " + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in self.stage_seconds.items()))
        if self.quality:
            out.append(f"  {self.quality}")
        if self.published:
            out.append("  published")
        else:
            out.append("  nothing to publish: the tables are current" if self.mode == "up-to-date" else "  nothing published")
        return out


@dataclass
class _Plan:
    input_root: str
    output_root: str
    in_scope: list
    ignored: List[FileInfo]
    advisors: List[FileInfo]


def _plan(storage: Storage, config: RunConfig) -> _Plan:
    from jobs.state import ChangeLogFile

    input_root, output_root = normalize_root(config.input), normalize_root(config.output)
    if not storage.exists(input_root):
        raise UsageError(f"input path does not exist: {config.input}")
    log_root = join(input_root, "appointments")
    if not storage.is_dir(log_root):
        raise UsageError(
            f"no appointments/ folder under {config.input}: expected {{input}}/appointments/ingest_date=YYYY-MM-DD/*.jsonl.gz"
        )
    in_scope, ignored = [], []
    for info in storage.list_files(log_root):
        relative = info.path[len(log_root):]
        match = _INGEST_FOLDER.match(relative)
        ingest_date = None
        if match and relative.endswith(_CHANGE_LOG_SUFFIXES):
            try:
                ingest_date = dt.date.fromisoformat(match.group(1))
            except ValueError:
                pass
        if ingest_date is None:
            ignored.append(info)
        elif config.as_of is None or ingest_date <= config.as_of:
            in_scope.append(ChangeLogFile(info.path, info.uri, info.size, info.modified_ms, ingest_date))
    advisors_root = join(input_root, "advisors")
    advisors = []
    if storage.is_dir(advisors_root):
        advisors = [
            f for f in storage.list_files(advisors_root)
            if f.path.endswith(".csv") and "/" not in f.path[len(advisors_root) + 1:]
        ]
    return _Plan(input_root, output_root, sorted(in_scope, key=lambda f: f.path), ignored, sorted(advisors, key=lambda f: f.path))


def _read_lines(spark, files):
    """The lines of the given change-log files, with their user-facing path and ingest_date."""
    from pyspark.sql import functions as F

    if not files:
        return spark.createDataFrame([], "value string, source_file string, ingest_date date")
    catalog = spark.createDataFrame(
        [(f.uri, f.path, f.ingest_date) for f in files], "uri string, source_file string, ingest_date date"
    )
    # recursiveFileLookup turns off partition inference: ingest_date comes from our own listing.
    lines = spark.read.option("recursiveFileLookup", "true").text([f.uri for f in files])

    def same_form(uri):  # Hadoop writes local URIs as file:/x or file:///x depending on the call
        return F.regexp_replace(uri, "^file:/+", "/")

    return (
        lines.select("value", same_form(F.col("_metadata.file_path")).alias("uri"))
        .join(F.broadcast(catalog.withColumn("uri", same_form(F.col("uri")))), "uri")
        .drop("uri")
    )


def _write_table(spark, df, path: str, partition_column: str) -> None:
    df.repartition(partition_column).write.mode("overwrite").partitionBy(partition_column).parquet(path)


def _read_table(spark, path: str, schema):
    return spark.read.schema(schema).parquet(path)


def _write_empty_table(spark, path: str, schema) -> None:
    """An empty table is one empty Parquet file with every column, so readers still see the schema."""
    spark.createDataFrame([], schema).coalesce(1).write.mode("overwrite").parquet(path)


@contextmanager
def _stage(summary: RunSummary, name: str):
    started = time.monotonic()
    try:
        yield
    finally:
        summary.stage_seconds[name] = summary.stage_seconds.get(name, 0.0) + time.monotonic() - started


def run_pipeline(spark, config: RunConfig, log=print) -> RunSummary:
    """One run of the pipeline; returns its summary. Raises UsageError for misuse, QualityGateFailed when
    the gate stops the publish (then nothing is published and the state does not advance)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from jobs import aggregates, compaction, parsing
    from jobs.advisors import capacities, check_unique, read_advisors
    from jobs.contract import TABLES
    from jobs.state import State, fingerprint, load_state, new_files, save_state, why_full_rebuild

    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    storage = Storage(spark)
    summary = RunSummary(run_id=run_id, mode="full", reason="")
    with _stage(summary, "plan"):
        plan = _plan(storage, config)
        summary.files_ignored = len(plan.ignored)
        if plan.ignored:
            log(f"warning: {len(plan.ignored)} file(s) outside the change-log layout were ignored, e.g. {plan.ignored[0].path}")
        raw_advisors = read_advisors(spark, [a.uri for a in plan.advisors])
        advisors = None
        if raw_advisors is not None:
            try:
                advisors = check_unique(capacities(raw_advisors))
            except UsageError:
                raise
            except Exception as exc:  # a header that is not the contract's, for instance
                raise UsageError(f"cannot read the advisors dimension under {config.input}/advisors: {str(exc).splitlines()[0]}") from None
        # Loaded even for --full: the quality gate compares row counts with the last publish.
        previous = load_state(storage, plan.output_root)
        rebuild = "--full" if config.full else why_full_rebuild(previous, plan.input_root, plan.in_scope, config.as_of)
        base = None if rebuild else previous
        to_read = new_files(base, plan.in_scope)
        summary.mode, summary.reason = ("full", rebuild) if rebuild else ("incremental", f"{len(to_read)} new file(s)")
        files = {f.path: (f.size, f.modified_ms, f.ingest_date.isoformat()) for f in plan.in_scope}
        inputs_fingerprint = fingerprint(files, config.timezone, plan.advisors) + CONTRACT_VERSION
        tables_present = all(storage.exists(join(plan.output_root, name)) for name in TABLES)
        if base is not None and not to_read and base.fingerprint == inputs_fingerprint and tables_present:
            summary.mode, summary.reason = "up-to-date", "no new files, same time zone and advisors"
            summary.rows = dict(base.table_rows)
            summary.quarantined = summary.rows.get("quarantine", 0)
            return summary

    staging = join(plan.output_root, "_staging", run_id)
    state = State(run_id=run_id, input_root=plan.input_root, files=files, fingerprint=inputs_fingerprint)
    state_dir = state.folder(plan.output_root)
    parsed = parsing.parse_lines(_read_lines(spark, to_read)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with _stage(summary, "read_parse"):
            counts = parsed.agg(
                F.count(F.lit(1)).alias("lines"),
                F.count(F.when(F.col("reason").isNull(), True)).alias("valid"),
                F.countDistinct(F.when(F.col("reason").isNull(), F.col("event_id"))).alias("distinct_events"),
            ).first()
            summary.files_read = len(to_read)
            summary.events_read = counts["lines"]
            summary.duplicates = counts["valid"] - counts["distinct_events"]

        with _stage(summary, "compact"):
            changes = parsing.valid_changes(parsed)
            rejects = parsing.rejected_lines(parsed)
            if base is not None:
                changes = changes.unionByName(_read_table(spark, join(base.folder(plan.output_root), "changes"), changes.schema))
                rejects = rejects.unionByName(_read_table(spark, join(base.folder(plan.output_root), "rejects"), rejects.schema))
            compaction.latest_changes(changes).write.parquet(join(state_dir, "changes"))
            rejects.write.parquet(join(state_dir, "rejects"))
            winners = _read_table(spark, join(state_dir, "changes"), changes.schema)
            line_rejects = _read_table(spark, join(state_dir, "rejects"), rejects.schema)

        with _stage(summary, "tables"):
            checked = compaction.check_images(winners).persist(StorageLevel.MEMORY_AND_DISK)
            valid, image_rejects = compaction.split_checked(checked)
            appointments = aggregates.appointments_table(valid, config.timezone).persist(StorageLevel.MEMORY_AND_DISK)
            outputs = {
                "appointments": appointments,
                "advisor_daily_load": aggregates.advisor_daily_load(appointments, advisors),
                "booking_trends_daily": aggregates.booking_trends_daily(appointments, config.timezone),
                "quarantine": aggregates.quarantine_table(line_rejects, image_rejects),
            }
            staged = {}
            for name, df in outputs.items():
                schema, partition_column = TABLES[name]
                path = join(staging, name)
                _write_table(spark, df, path, partition_column)
                staged[name] = _read_table(spark, path, schema)
                summary.rows[name] = staged[name].count()
                if summary.rows[name] == 0:
                    _write_empty_table(spark, path, schema)
                    staged[name] = _read_table(spark, path, schema)
            appointments.unpersist()
            checked.unpersist()
            summary.quarantined = summary.rows["quarantine"]

        report_dir = join(plan.output_root, "_runs", run_id)
        if config.skip_quality:
            summary.quality = "QUALITY GATE SKIPPED (--skip-quality): tables published without validation"
            log(f"WARNING: {summary.quality}")
        else:
            with _stage(summary, "quality"):
                frames = {**staged, "change_log": parsing.valid_changes(parsed), "snapshot": winners}
                _quality_gate(storage, summary, frames, previous, report_dir)

        with _stage(summary, "publish"):
            for name in TABLES:
                storage.swap_in(join(staging, name), join(plan.output_root, name))
            state.table_rows = dict(summary.rows)
            save_state(storage, plan.output_root, state)
            summary.published = True
            if previous is not None and previous.run_id != state.run_id:
                storage.delete(previous.folder(plan.output_root))
            storage.write_text(join(report_dir, "manifest.json"), _manifest(config, plan, summary))
    finally:
        parsed.unpersist()
        storage.delete(staging)
        if not summary.published:
            storage.delete(state_dir)
    return summary


def _quality_gate(storage, summary, frames, previous, report_dir) -> None:
    import os
    import shutil
    import tempfile

    from jobs.quality import run_gate, write_report

    report = run_gate(frames, previous.table_rows if previous is not None else None)
    summary.quality = report.summary_line()
    local_dir = local_path(report_dir)
    target = local_dir or tempfile.mkdtemp(prefix="advising-quality-")
    os.makedirs(target, exist_ok=True)
    written = write_report(report, target)
    if local_dir is None:
        for path in written:
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    storage.write_text(join(report_dir, os.path.relpath(path, target)), handle.read())
        shutil.rmtree(target, ignore_errors=True)
    if not report.passed:
        raise QualityGateFailed(f"{summary.quality} (report: {join(report_dir, 'quality.json')})")


def _manifest(config: RunConfig, plan: _Plan, summary: RunSummary) -> str:
    doc = {
        "run_id": summary.run_id,
        "contract_version": CONTRACT_VERSION,
        "config": {**asdict(config), "as_of": config.as_of.isoformat() if config.as_of else None},
        "input_root": plan.input_root,
        "summary": asdict(summary),
    }
    return json.dumps(doc, indent=1)


def execute(config: RunConfig, master: Optional[str] = None) -> int:
    """Run once and print the summary; exit status 0, 1 when the quality gate stopped the publish.
    UsageError propagates to the caller, which prints it as one line."""
    from jobs.session import get_session

    spark = get_session(master=master)
    try:
        summary = run_pipeline(spark, config)
    except QualityGateFailed as exc:
        print(f"error: quality gate failed, nothing published: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return 0


def main(argv: Sequence[str]) -> int:
    """spark-submit entry: same flags and messages as `advising run`."""
    try:
        return execute(RunConfig.from_args(argv))
    except UsageError as exc:
        print(f"advising job: error: {exc}", file=sys.stderr)
        return 2
