"""The whole run: plan -> read & parse -> compact -> tables into a new version -> quality gate -> commit -> catalog.
The gate checks each frame on a thread of its own as soon as the run has made it; the commit waits for its verdict.

Used by `advising run` (local mode) and by the spark-submit entry (jobs/main.py) on EMR. Reading,
writing and state live here and in jobs.storage / jobs.state; the rules live in the pure modules
(parsing, compaction, aggregates).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

from jobs.config import DRIVER_MEMORY_ENV, RunConfig, check_input_layout
from common.errors import UsageError
from jobs.storage import FileInfo, Storage, after_prefix, file_path_of_line, join, local_path, normalize_root, read_table, write_empty_table, write_table

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
    catalog: str = ""  # what the catalog update did, when the run has a catalog database
    catalog_failed: bool = False
    touched: int = 0  # a nightly run: appointments whose winner a new change replaced
    recomputed: Dict[str, List[int]] = field(default_factory=dict)  # a nightly run: table -> [recomputed, all] partitions
    trends_read: List[int] = field(default_factory=list)  # a nightly run: [read, all] appointment dates its trends read

    def lines(self) -> List[str]:
        out = [
            f"run {self.run_id}: {self.mode} ({self.reason})",
            f"  files read {self.files_read}, ignored {self.files_ignored}; events read {self.events_read}, "
            f"duplicates {self.duplicates}, quarantined (table) {self.quarantined}",
        ]
        if self.recomputed:
            out.append(
                f"  nightly: {self.touched} appointments touched; partitions recomputed: "
                + ", ".join(f"{name} {done} of {total}" for name, (done, total) in self.recomputed.items())
                + (f"; the trends read the appointments of {self.trends_read[0]} of {self.trends_read[1]} dates" if self.trends_read else "")
            )
        if self.rows:
            out.append("  rows: " + ", ".join(f"{name} {count}" for name, count in self.rows.items()))
        out.append("  seconds: " + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in self.stage_seconds.items()))
        if self.quality:
            out.append(f"  {self.quality}")
        if self.catalog and not self.catalog_failed:
            out.append(f"  {self.catalog}")
        if self.published:
            out.append("  published")
        else:
            out.append("  nothing to publish: the tables are current" if self.mode == "up-to-date" else "  nothing published")
        return out


@dataclass
class _Plan:
    input_root: str
    output_root: str
    log_root: str  # the change log's folder: input_root/appointments
    in_scope: list
    ignored: List[FileInfo]
    advisors: List[FileInfo]


def _plan(storage: Storage, config: RunConfig) -> _Plan:
    from jobs.state import ChangeLogFile

    input_root, output_root = normalize_root(config.input), normalize_root(config.output)
    check_input_layout(config.input, input_root, storage.exists, storage.is_dir)
    log_root = join(input_root, "appointments")
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
    return _Plan(input_root, output_root, log_root, sorted(in_scope, key=lambda f: f.path), ignored, sorted(advisors, key=lambda f: f.path))


def _read_lines(spark, log_root: str, files):
    """The lines of the given change-log files (all below `log_root`), with their user-facing path and
    ingest_date (the date of the ingest_date=YYYY-MM-DD folder the path starts with below the root: the plan
    kept only such files)."""
    from pyspark.sql import functions as F

    if not files:
        return spark.createDataFrame([], "value string, source_file string, ingest_date date")
    # recursiveFileLookup turns off partition inference: ingest_date comes from the path, as in the plan.
    lines = spark.read.option("recursiveFileLookup", "true").text([f.uri for f in files])
    folder_date = after_prefix(F.col("source_file"), log_root.rstrip("/") + "/ingest_date=", 10)
    return lines.select("value", file_path_of_line(spark, log_root, files).alias("source_file")).withColumn(
        "ingest_date", folder_date.cast("date")
    )


@contextmanager
def _stage(summary: RunSummary, name: str):
    from jobs import progress

    def record(seconds: float) -> None:
        summary.stage_seconds[name] = summary.stage_seconds.get(name, 0.0) + seconds

    with progress.stage(name, on_end=record):
        yield


@dataclass
class _Run:
    """What the stages of one run share: the session, the plan, and the state it extends."""

    spark: object
    storage: Storage
    config: RunConfig
    log: object
    summary: RunSummary
    plan: _Plan = None
    advisors: object = None
    previous: object = None  # the last published state (the gate compares row counts with it)
    base: object = None  # the state this run extends; None for a full rebuild
    to_read: list = field(default_factory=list)
    state: object = None
    store: object = None  # jobs.versions.VersionStore of the output
    # Rows of the gate's first frames counted by the jobs that made them (so the gate need not): the valid lines
    # and the winners (in a nightly run, one per touched appointment).
    counted: Dict[str, int] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """Where this run writes its tables and state (jobs.versions)."""
        from jobs.versions import version_dir

        return version_dir(self.plan.output_root, self.summary.run_id)

    @property
    def report_dir(self) -> str:
        return join(self.plan.output_root, "_runs", self.summary.run_id)


def run_pipeline(spark, config: RunConfig, log=print) -> RunSummary:
    """One run of the pipeline; returns its summary. Raises UsageError for misuse, QualityGateFailed when
    the gate stops the publish (then nothing is published and the state does not advance). A catalog update
    that fails leaves the data committed and is reported in summary.catalog (catalog_failed)."""
    from jobs.quality.gx import import_in_background
    from jobs.versions import VersionStore

    if not config.skip_quality:
        import_in_background()
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    run = _Run(spark, Storage(spark), config, log, RunSummary(run_id=run_id, mode="full", reason=""))
    with _stage(run.summary, "plan"):
        run.plan = _plan(run.storage, config)
    run.store = VersionStore(run.storage, run.plan.output_root, log=log)
    with run.store.lease(run_id) as lease:
        run.store.recover()
        with _stage(run.summary, "plan"):
            proceed = _plan_run(run)
        if proceed:
            parsed, gate = None, _GateThread(run)
            try:
                parsed = _read_and_parse(run)
                if run.base is None:
                    winners, line_rejects = _compact(run, parsed)
                    gate.check_compacted(parsed, winners)
                    _stage_tables(run, winners, line_rejects, gate)
                    _quality_gate(run, gate)
                else:
                    night = _compact_nightly(run, parsed)
                    gate.check_compacted(parsed, night.winners)
                    whole = _stage_nightly(run, night, parsed, gate)
                    _quality_gate(run, gate, whole)
                    night.release()
                _publish(run, lease)
            finally:
                gate.close()
                if parsed is not None:
                    _release(parsed)
                if not run.summary.published:
                    run.store.discard(run_id)
        if config.catalog_database:
            _update_catalog(run)
    return run.summary


def _plan_run(run: _Run) -> bool:
    """List the inputs, check the advisors dimension, decide full / incremental / up-to-date.
    False when the published tables are already current (nothing to do)."""
    from jobs.advisors import capacities, check_unique, read_advisors
    from jobs.state import State, fingerprint, load_state, new_files

    config, summary, plan = run.config, run.summary, run.plan
    summary.files_ignored = len(plan.ignored)
    if plan.ignored:
        run.log(f"warning: {len(plan.ignored)} file(s) outside the change-log layout were ignored, e.g. {plan.ignored[0].path}")
    raw_advisors = read_advisors(run.spark, [a.uri for a in plan.advisors])
    if raw_advisors is not None:
        try:
            run.advisors = check_unique(capacities(raw_advisors))
        except UsageError:
            raise
        except Exception as exc:  # a header that is not the contract's, for instance
            raise UsageError(f"cannot read the advisors dimension under {config.input}/advisors: {str(exc).splitlines()[0]}") from None
    # Loaded even for --full: the quality gate compares row counts with the last publish.
    run.previous = load_state(run.store)
    rebuild = _why_full(config, plan, run.previous)
    run.base = None if rebuild else run.previous
    run.to_read = new_files(run.base, plan.in_scope)
    summary.mode, summary.reason = ("full", rebuild) if rebuild else ("incremental", f"{len(run.to_read)} new file(s)")
    files = {f.path: (f.size, f.modified_ms, f.ingest_date.isoformat()) for f in plan.in_scope}
    inputs_fingerprint = fingerprint(files, config.timezone, plan.advisors) + CONTRACT_VERSION
    if run.base is not None and not run.to_read and run.base.fingerprint == inputs_fingerprint:
        summary.mode, summary.reason = "up-to-date", "no new files, same time zone and advisors"
        summary.rows = dict(run.base.table_rows)
        summary.quarantined = summary.rows.get("quarantine", 0)
        return False
    run.state = State(run_id=summary.run_id, input_root=plan.input_root, files=files, fingerprint=inputs_fingerprint,
                      tables_key=_tables_key(config, plan))
    return True


def _why_full(config: RunConfig, plan: _Plan, previous) -> Optional[str]:
    """Why this run rebuilds from the whole log instead of extending `previous` (the current state), or None."""
    from jobs.state import why_full_rebuild

    if config.full:
        return "--full"
    return why_full_rebuild(previous, plan.input_root, plan.in_scope, config.as_of, _tables_key(config, plan))


def _tables_key(config: RunConfig, plan: _Plan) -> str:
    """What the tables depend on besides the change log (jobs.state.tables_key): the key a state is written
    with is the one the next run's rebuild decision compares."""
    from jobs.state import tables_key

    return tables_key(config.timezone, plan.advisors, CONTRACT_VERSION)


# A local run is short (jobs.session.SHORT_RUN_JIT) when it reads at most this much change log (gzip; a full run its
# whole log, a nightly run its new files) and, in a nightly run, a state of at most this much Parquet, which it
# scans for the old winners. Measured (docs/performance.md, round 12): C1 only made the nights of a 200k log (0.8 MB
# of new files, a 29 MB state) and of a 1M log (3.7 MB, a 147 MB state) faster, a full run over 84 MB of log about
# as fast (36.4-36.6 against 37.5-37.9 s) and one over 363 MB slower; the limits stay inside what gained. Round 18:
# the night of a 3M log (11 MB of new files, a 491 MB state) 41.9, 43.7, 41.3 s with C1 only against 47.3, 44.4,
# 44.1 s tiered (71-75 against 85-91 busy CPU s), so the state's limit covers it.
SHORT_RUN_LOG_BYTES = 64 * 1024 * 1024
SHORT_RUN_STATE_BYTES = 512 * 1024 * 1024


def is_short_run(config: RunConfig) -> bool:
    """Whether a local run reads little enough that its JVM should compile with C1 only (jobs.session.get_session's
    `short_run`). Decided before the JVM starts, from the local files alone: the plan and the current version as
    the run will find them (a concurrent run can make the guess stale, which costs only speed). False for input or
    output that is not a local path. Misuse the plan finds raises its UsageError here, before any JVM."""
    from jobs.state import load_state, new_files
    from jobs.versions import VersionStore

    if local_path(config.input) is None or local_path(config.output) is None:
        return False
    storage = Storage(environ={})  # local files through `os`, even where ADVISING_STORAGE sends the run through Hadoop
    plan = _plan(storage, config)
    previous = load_state(VersionStore(storage, plan.output_root, log=lambda line: None))
    if _why_full(config, plan, previous):
        return sum(f.size for f in plan.in_scope) <= SHORT_RUN_LOG_BYTES
    state_bytes = sum(f.size for f in storage.list_files(previous.folder(plan.output_root)))
    return sum(f.size for f in new_files(previous, plan.in_scope)) <= SHORT_RUN_LOG_BYTES and state_bytes <= SHORT_RUN_STATE_BYTES


def _read_and_parse(run: _Run):
    """Rule 1 over every new line; the parsed lines are kept (a local checkpoint) for compaction, the
    rejected lines and the gate, so the files are read and parsed once."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from jobs import parsing
    from jobs.session import shuffle_settings

    # A full run shuffles the whole log, the state and the tables: sized from the whole log in scope. A
    # nightly run shuffles only the night's appointments (their changes and old winners) and the partitions
    # they reach: sized from the new files (a partition count from the whole log made every one of its
    # small stages many near-empty tasks: 5 s of a 40 s night at 1M appointments).
    scope_bytes = sum(f.size for f in (run.plan.in_scope if run.base is None else run.to_read))
    for key, value in shuffle_settings(scope_bytes, run.spark.sparkContext.defaultParallelism).items():
        run.spark.conf.set(key, value)
    with _stage(run.summary, "read_parse"):
        # Kept as rows (memory, spilling to disk), not as a cache: building the columnar cache cost a
        # third of the parse itself (13 s of 41 at 1M appointments), the checkpoint a tenth. The lines are
        # counted as they are checkpointed (a count afterwards was a Spark job of its own), the valid ones too:
        # they are the gate's change_log frame.
        lines = Observation("lines")
        parsed = (
            parsing.parse_lines(_read_lines(run.spark, run.plan.log_root, run.to_read))
            .observe(lines, F.count(F.lit(1)).alias("lines"), F.count(F.when(parsing.is_valid(), True)).alias("valid"))
            .localCheckpoint(eager=True)
        )
        run.summary.files_read = len(run.to_read)
        run.summary.events_read = lines.get["lines"]
        run.counted["change_log"] = lines.get["valid"]
    return parsed


def _release(checkpointed) -> None:
    """Drop a local checkpoint's blocks now rather than whenever the JVM's garbage collector finds them."""
    try:
        checkpointed._jdf.queryExecution().logical().rdd().unpersist(False)
    except Exception:  # the JVM is gone (out of memory): nothing left to release, and the run's own error stands
        pass


def _compact(run: _Run, parsed):
    """Rules 2-5 over the whole log: the latest change per appointment and its image's verdict, written as
    the new state."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from jobs import compaction, incremental, parsing
    from jobs.state import winners_writer

    spark, output_root = run.spark, run.plan.output_root
    state_dir = run.state.folder(output_root)
    with _stage(run.summary, "compact"):
        # The gate's snapshot frame is these winners: counted here, on the way.
        winners_counted = Observation("winners")
        changes = parsing.valid_changes(parsed)
        rejects = parsing.rejected_lines(parsed)
        duplicates = Observation("duplicates")
        # The state's first generation (a nightly run adds one per night, jobs.incremental), written straight
        # from the compaction's partitions. Rule 5 runs in the same job: the state keeps each winner's
        # verdict and typed columns.
        checked = compaction.check_images(compaction.latest_changes(changes, duplicates))
        generation = join(state_dir, "changes", f"{incremental.GENERATION}=0")
        winners_writer(checked.observe(winners_counted, F.count(F.lit(1)).alias("rows"))).parquet(generation)
        run.summary.duplicates = duplicates.get["duplicates"]
        run.counted["snapshot"] = winners_counted.get["rows"]
        rejects.write.parquet(join(state_dir, "rejects"))
        winners = read_table(spark, generation, checked.schema)
        line_rejects = read_table(spark, join(state_dir, "rejects"), rejects.schema)
    return winners, line_rejects


def _stage_tables(run: _Run, winners, line_rejects, gate: "_GateThread") -> None:
    """The output tables from the checked winners: every one written into the run's version (rows counted by
    the write itself) and handed to the gate as a lazy read of the written Parquet. The aggregates read the
    written appointments table (columnar, only the columns they use) rather than a cache of it."""
    from jobs import aggregates, compaction
    from jobs.state import observe_reach, reach_by_day

    timezone = run.config.timezone
    with _stage(run.summary, "tables"):
        valid, image_rejects = compaction.split_checked(winners)
        appointments = _write_staged(run, gate, "appointments", aggregates.appointments_table(valid, timezone))
        _write_staged(run, gate, "advisor_daily_load", aggregates.advisor_daily_load(appointments, run.advisors))
        # Each booking day's reach, observed as the trends are made, goes into the state for the nights to come.
        daily, reach = observe_reach(aggregates.daily_bookings(appointments, timezone))
        _write_staged(run, gate, "booking_trends_daily", aggregates.trends_from_daily(daily))
        run.state.booking_reach = reach_by_day(reach)
        _write_staged(run, gate, "quarantine", aggregates.quarantine_table(line_rejects, image_rejects))
        run.summary.quarantined = run.summary.rows["quarantine"]


def _write_staged(run: _Run, gate: "_GateThread", name: str, df):
    """One table written into the run's version (its rows counted by the write), read back for the gate and
    the next tables."""
    from jobs.contract import TABLES

    schema, partition_column = TABLES[name]
    path = join(run.version, name)
    run.summary.rows[name] = write_table(df, path, partition_column)
    if run.summary.rows[name] == 0:
        write_empty_table(run.spark, path, schema)
    staged = read_table(run.spark, path, schema)
    gate.check(name, staged, run.summary.rows[name])
    return staged


def _compact_nightly(run: _Run, parsed):
    """Rules 2-5 for the appointments the new files touch (jobs.incremental); the new state carries the rest."""
    from pyspark.sql import Observation

    from jobs import incremental, parsing

    output_root = run.plan.output_root
    with _stage(run.summary, "compact"):
        duplicates = Observation("duplicates")
        night, run.summary.recomputed["state"] = incremental.compact(
            run.spark, run.base.folder(output_root), run.state.folder(output_root),
            parsing.valid_changes(parsed), parsing.rejected_lines(parsed), run.storage, duplicates,
        )
        run.summary.duplicates = duplicates.get["duplicates"]
        run.counted["snapshot"] = night.count
    return night


def _stage_nightly(run: _Run, night, parsed, gate: "_GateThread"):
    """The tables of the new version with only the reachable partitions recomputed (jobs.incremental), each
    handed to the gate as its recomputed partitions once written; returns the whole-table figures."""
    from jobs import incremental, parsing
    from jobs.contract import TABLES
    from jobs.quality import WholeTables
    from jobs.versions import version_dir

    summary = run.summary
    with _stage(summary, "tables"):
        nightly = incremental.stage_tables(
            run.spark, run.storage, version_dir(run.plan.output_root, run.base.run_id), run.base.table_rows,
            run.base.booking_reach, run.version, night, parsing.rejected_lines(parsed), run.config.timezone, run.advisors,
            on_written=gate.check,
        )
        run.state.booking_reach = nightly.booking_reach
        summary.trends_read = nightly.trends_read
        summary.rows.update(nightly.rows)
        summary.quarantined = summary.rows["quarantine"]
        summary.touched = night.count
        for name, (_, column) in TABLES.items():
            partitions = incremental.partitions(run.storage, join(run.version, name), column)
            summary.recomputed[name] = [len(nightly.recomputed[name]), len(partitions)]
    return WholeTables(rows=dict(nightly.rows), duplicate_appointment_ids=nightly.duplicate_appointment_ids)


class _GateThread:
    """The quality gate (jobs.quality.Gate) on a thread of its own: each frame is checked as soon as the run has
    made it, beside the run's next steps (a night's small queries leave a core idle, and GX's own Python work
    runs while Spark works); `report` waits for the last one. One thread, so GX's objects are only ever used by
    one. With --skip-quality it checks nothing."""

    def __init__(self, run: _Run):
        from concurrent.futures import ThreadPoolExecutor

        self._run, self._pending, self._pool = run, [], None
        if not run.config.skip_quality:
            from jobs.quality import Gate

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="advising-gate")
            previous = run.previous.table_rows if run.previous is not None else None
            self._gate = self._pool.submit(Gate, previous, nightly=run.base is not None)

    def check(self, frame: str, df, counted_rows: Optional[int]) -> None:
        """Queue `frame`, with its rows as the job that made it counted them."""
        if self._pool is not None:
            self._pending.append(self._pool.submit(lambda: self._gate.result().check(frame, df, counted_rows)))

    def check_compacted(self, parsed, winners) -> None:
        """The frames compaction leaves: the valid lines and one winner per appointment (in a night, per
        touched appointment)."""
        from jobs import parsing

        self.check("change_log", parsing.valid_changes(parsed), self._run.counted["change_log"])
        self.check("snapshot", winners, self._run.counted["snapshot"])

    def report(self, whole=None):
        for future in self._pending:
            future.result()
        return self._gate.result().report(whole)

    def close(self) -> None:
        """Stop checking (a failed run) or let the thread go (a finished one): returns once no check runs."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _quality_gate(run: _Run, gate: _GateThread, whole=None) -> None:
    """The data-quality gate's verdict once every frame is checked (a nightly run: the recomputed partitions,
    and `whole` for the whole-table invariants); raises QualityGateFailed to stop the publish."""
    summary = run.summary
    if run.config.skip_quality:
        summary.quality = "QUALITY GATE SKIPPED (--skip-quality): tables published without validation"
        run.log(f"WARNING: {summary.quality}")
        return
    # The frames were checked beside the stages that made them; this stage is the wait for the last ones.
    with _stage(summary, "quality"):
        _gate_verdict(run.storage, summary, gate.report(whole), run.report_dir)


def _publish(run: _Run, lease) -> None:
    """The commit: the run's version (tables and state) becomes current in one step (jobs.versions)."""
    from jobs.contract import TABLES

    summary = run.summary
    with _stage(summary, "publish"):
        run.store.commit(
            summary.run_id,
            rows=summary.rows,
            state=run.state.to_doc(),
            tables={name: column for name, (_, column) in TABLES.items()},
            keep=run.config.keep_versions,
            lease=lease,
        )
        summary.published = True
        run.storage.write_text(join(run.report_dir, "manifest.json"), _manifest(run.config, run.plan, summary))


def _update_catalog(run: _Run) -> None:
    """Point the Glue tables at the current version; every run does it, so a failed update is repaired by the
    next one. The data stays committed whatever happens here."""
    import boto3

    from jobs.contract import TABLES
    from jobs.versions import sync_catalog

    version, database, summary = run.store.current(), run.config.catalog_database, run.summary
    if version is None:
        return
    with _stage(summary, "catalog"):
        try:
            changed = sync_catalog(boto3.client("glue"), database, run.plan.output_root, version, TABLES)
        except Exception as exc:  # boto3's errors, a missing region or credentials: all end the same way
            summary.catalog_failed = True
            summary.catalog = (
                f"version {version.run_id} is committed, but the Glue tables in {database} were not updated: "
                f"{' '.join(str(exc).split())}; the next run (or `advising rollback --to {version.run_id} "
                f"--catalog-database {database}`) repairs them"
            )
            return
    summary.catalog = f"catalog {database}: {len(changed)} of {len(TABLES)} tables switched to version {version.run_id}"


def _gate_verdict(storage, summary, report, report_dir) -> None:
    """The gate's report written beside the run's manifest; QualityGateFailed if it did not pass."""
    import os
    import shutil
    import tempfile

    from jobs.quality import write_report

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


def execute(config: RunConfig, master: Optional[str] = None, quiet: bool = True, metrics: bool = False) -> int:
    """Run once and print the summary; exit status 0, 1 when the quality gate stopped the publish, Spark
    ran out of memory (nothing published then), or the catalog could not follow a commit (the data is
    committed then; the next run repairs the catalog). UsageError propagates to the caller, which prints
    it as one line. `quiet=False` (--verbose) keeps Spark's own logging. `metrics=True` (the spark-submit
    entry, i.e. the EMR step) adds the summary as CloudWatch EMF lines; `advising run` prints people's lines only."""
    from jobs.metrics import emf_lines
    from jobs.session import get_session

    spark = get_session(master=master, driver_memory=config.driver_memory, quiet=quiet, short_run=is_short_run(config))
    _quiet_when_the_jvm_dies(spark)
    try:
        summary = run_pipeline(spark, config)
    except QualityGateFailed as exc:
        print(f"error: quality gate failed, nothing published: {exc}", file=sys.stderr)
        if metrics:
            print("\n".join(emf_lines(None, int(time.time() * 1000))))
        return 1
    except Exception as exc:
        failure = _out_of_memory(spark, exc)
        if failure is None:
            raise
        what, change = failure
        log_path = _write_trace(what, exc)
        print(
            f"error: Spark ran out of memory ({what}), nothing published; {change} the driver memory with "
            f"--driver-memory or {DRIVER_MEMORY_ENV} (this run: {_spark_memory(spark, config)}); full trace: {log_path}",
            file=sys.stderr,
        )
        return 1
    print("\n".join(summary.lines() + (emf_lines(summary, int(time.time() * 1000)) if metrics else [])))
    if summary.catalog_failed:
        print(f"error: {summary.catalog}", file=sys.stderr)
        return 1
    return 0


def _quiet_when_the_jvm_dies(spark) -> None:
    """A JVM that dies mid-run makes py4j log every failed call with a traceback (on the root logger) and
    pyspark's accumulator server print one per lost connection; the one-line error of `execute` says
    what happened, and the log file it names holds the trace."""
    import logging

    logging.getLogger().addFilter(lambda record: "py4j" not in record.pathname.split(os.sep))
    server = getattr(spark.sparkContext, "_accumulatorServer", None)  # private to pyspark: absent, nothing to quiet
    if server is not None:
        server.handle_error = lambda request, client_address: None


# The exit status Spark gives a JVM that died of an OutOfMemoryError (SparkExitCode.OOM), and the
# signal the Linux out-of-memory killer sends (a child killed by it has exit status -9).
_JVM_OOM_EXIT = 52
_SIGKILL = 9


def _out_of_memory(spark, exc: BaseException):
    """(what ran out, "raise" or "lower") if `exc` (or what caused it) is Spark running out of memory: a
    Java OutOfMemoryError reported through py4j, the local JVM gone with Spark's out-of-memory exit status,
    or the local JVM killed by the system (its out-of-memory killer: the heap asked for more than the
    machine had free, so the driver memory must come down). None otherwise."""
    seen = exc
    while seen is not None:
        java = getattr(seen, "java_exception", None)
        text = str(java) if java is not None else ""
        named = re.search(r"java\.lang\.OutOfMemoryError[^\n]*", text)
        if named:
            return named.group(0).strip(), "raise"
        seen = seen.__cause__ or seen.__context__
    from jobs.session import local_jvm

    process = local_jvm(spark)  # None under spark-submit
    if process is not None:
        try:
            status = process.wait(timeout=30) if process.poll() is None and _gateway_gone(exc) else process.poll()
        except Exception:  # still running after the wait: not a dead JVM
            status = None
        if status == _JVM_OOM_EXIT:
            return "java.lang.OutOfMemoryError: the Spark JVM exited", "raise"
        if status == -_SIGKILL:
            return "the Spark JVM was killed (SIGKILL, as the system's out-of-memory killer does)", "lower"
    return None


def _gateway_gone(exc: BaseException) -> bool:
    from py4j.protocol import Py4JError

    seen = exc
    while seen is not None:
        if isinstance(seen, (Py4JError, ConnectionError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _spark_memory(spark, config: RunConfig) -> str:
    try:
        return f"driver {spark.sparkContext.getConf().get('spark.driver.memory', 'default')}"
    except Exception:  # the JVM is gone: say what was asked for
        return f"driver {config.driver_memory or 'sized from the machine'}"


def _write_trace(failure: str, exc: BaseException) -> str:
    """What failed, then the whole Python and Java trace, in a file the one-line error names."""
    import tempfile
    import traceback

    handle, path = tempfile.mkstemp(prefix="advising-run-", suffix=".log")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(f"{failure}\n\n")
        out.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        seen = exc
        while seen is not None:
            java = getattr(seen, "java_exception", None)
            if java is not None:
                try:
                    out.write("\nJava:\n" + str(java.toString()) + "\n")
                    out.write("".join(f"    at {frame.toString()}\n" for frame in java.getStackTrace()))
                except Exception:  # the JVM is gone: the Python trace above holds its text
                    pass
            seen = seen.__cause__ or seen.__context__
    return path


def main(argv: Sequence[str]) -> int:
    """spark-submit entry: same flags and messages as `advising run`."""
    try:
        return execute(RunConfig.from_args(argv), metrics=True)
    except UsageError as exc:
        print(f"advising job: error: {exc}", file=sys.stderr)
        return 2
