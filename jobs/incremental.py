"""A nightly run: recompute only what the night's changes can reach, carry every other partition forward.

Where it sits: jobs.pipeline runs these steps instead of the full-run compaction and tables when the current
version can be extended (same input root, time zone and advisors; only new files). The result is a complete
new version, equal row for row to what a full run over the whole log would publish (contract rule 6; the
tests compare the two).

What the new changes reach. Only an appointment with a new valid change can move, and it moves only if its
winner changes: its new winner comes from its old winner (in the current state) and the new changes (rules
2-4), and when that is the old winner again (the new changes were older, or copies of it) nothing of it changes.
The touched appointments are those whose winner changed, and then:

- state (generations of winners, newest first): the touched appointments' new winners are written as a new
  generation beside the carried ones, and an appointment's winner is its row in the newest generation
  holding it; a night that finds MAX_GENERATIONS generations merges them into one, its own beside it. The new
  files' rejected lines are added to the rejected lines kept so far;
- appointments, advisor_daily_load: the dates of the touched appointments' old and new rows (a reschedule
  touches two days);
- booking_trends_daily: the booking days of the touched appointments' old and new rows are aggregated again
  from the new appointments table (only its dates those days reach: the state keeps each booking day's first
  and last appointment date), the other days' bookings are taken from the current table, and the small
  table (departments x days) is made from both, so the 7-day windows and each department's zero-filled range
  follow; only the dates whose rows changed are written;
- quarantine: the ingest dates of the new rejected lines and of the touched appointments' old and new
  image rejects.

Every partition not recomputed is copied from the current version (a hard link on local disk). Reading and
writing happen here; the rules stay in jobs.parsing, jobs.compaction and jobs.aggregates.
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from typing import Callable, Dict, List, Set

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import aggregates, compaction
from jobs.contract import TABLES
from jobs.session import shuffle_partitions
from jobs.state import observe_reach, reach_by_day, winners_writer
from jobs.storage import Storage, join, read_table, write_empty_table, write_table


@dataclass
class Compacted:
    """A night's compaction: the appointments whose winner the night changed (`touched`, `count` of them), the
    winners in the current state of every appointment with a new change (`old_winners`, checked state rows, their
    OLD_WINNER_COLUMNS) and the touched appointments' new winners (`winners`, checked). An appointment whose
    new changes all lost to its winner (a late older change, a copy of the winner) is not touched: its rows stay
    as they are. The old winners are persisted (small, one night's; `release` drops them), the winners are
    the night's generation of the new state."""

    touched: DataFrame
    count: int
    old_winners: DataFrame
    winners: DataFrame

    def release(self) -> None:
        self.old_winners.unpersist()


@dataclass
class Nightly:
    """What one nightly run recomputed: per table the partition values written again (the gate checks
    those), the rows written into them, and the whole table's row count; and the appointment ids the new
    appointments table holds more than once (none, unless a rule is broken)."""

    recomputed: Dict[str, List[str]] = field(default_factory=dict)
    written: Dict[str, int] = field(default_factory=dict)
    rows: Dict[str, int] = field(default_factory=dict)
    duplicate_appointment_ids: int = 0
    # The new state's booking reach (jobs.state.State.booking_reach), and the appointment dates the trends read of
    # all the dates the appointments table has: [read, all].
    booking_reach: Dict[str, List[str]] = field(default_factory=dict)
    trends_read: List[int] = field(default_factory=list)


# A night adds one generation of winners; a night that finds this many merges them into one, its own beside it
# (the lookup of old winners scans every generation, so they must not pile up; a merge is one shuffle of
# the state, about what a night of the earlier per-date rewrite cost).
MAX_GENERATIONS = 30
GENERATION = "generation"

# What a night reads of an appointment's old winner (a scan of the whole state, the night's largest): its change
# columns (rules 2-4 run again on them with the night's changes, the image text left null: the state does not keep
# it, and an old winner that wins again is the appointment's row already, nothing of it changes), and what places
# its rows in the tables (rule 5's verdict, the start and booking times). The typed columns left out are a quarter
# of the state's other bytes (the lookup in a warm JVM, 1M appointments: 2.4-2.6 s with every column but the
# image, 1.6-1.9 s with these).
OLD_WINNER_COLUMNS = compaction.CHECKED_CHANGE_COLUMNS + ("reason", "start_time", "created_at")


def compact(spark, base_state: str, new_state: str, changes: DataFrame, rejects: DataFrame, storage: Storage,
            duplicates: Observation):
    """Rules 2-5 for the appointments with a new change; writes the new state. Returns the night's
    Compacted (the appointments whose winner changed) and [generations written, generations]. The night's
    winners are a generation of their own; a night that finds MAX_GENERATIONS merges the current ones into one
    first."""
    with_changes = changes.select("appointment_id").distinct()
    source, target = join(base_state, "changes"), join(new_state, "changes")
    schema = compaction.state_schema(changes)
    generations = sorted(int(value) for value in partitions(storage, source, GENERATION))
    base = read_table(spark, source, T.StructType(schema.fields + [T.StructField(GENERATION, T.IntegerType())]))
    # The old winners of the appointments with a new change, only OLD_WINNER_COLUMNS of them. Kept: the tables'
    # old rows of the changed appointments are these winners' (no scan of the old tables).
    with_old = base.select(*OLD_WINNER_COLUMNS, GENERATION).join(F.broadcast(with_changes), "appointment_id", "left_semi")
    old = newest_generation(with_old).persist(StorageLevel.MEMORY_AND_DISK)
    without_image = old.select(*[F.lit(None).cast("string").alias(c) if c == "new_image" else c for c in compaction.CHANGE_COLUMNS])
    latest = compaction.latest_changes(changes.select(*compaction.CHANGE_COLUMNS).unionByName(without_image), duplicates)
    # Still the old winner: the same event from the same file (a copy found in an earlier file would be kept instead).
    moved = latest.join(old.select("appointment_id", "event_id", "source_file"), ["appointment_id", "event_id", "source_file"], "left_anti")
    # One winner per changed appointment: counted as the night's generation is written.
    counted = Observation("changed")
    new_generation = compaction.check_images(moved).select(*schema.names).observe(counted, F.count(F.lit(1)).alias("rows"))
    if len(generations) < MAX_GENERATIONS:
        # Earlier generations are carried as files: an appointment's older rows are shadowed, not rewritten.
        storage.copy_tree(source, target)
        night_generation, written = generations[-1] + 1, [1, len(generations) + 1]
    else:
        # The current state's generations merged into one (a shuffle of the whole state, not the night: its
        # partitions are sized from the state's bytes), the night's generation beside it.
        state_bytes = sum(f.size for f in storage.list_files(source))
        by_appointment = base.repartition(shuffle_partitions(state_bytes, spark.sparkContext.defaultParallelism), "appointment_id")
        winners_writer(newest_generation(by_appointment).select(*schema.names)).parquet(join(target, f"{GENERATION}=0"))
        night_generation, written = 1, [2, 2]
    path = join(target, f"{GENERATION}={night_generation}")
    # Written by the compaction's own tasks, one file each: a coalesce to one file made the whole compaction after
    # its shuffle a single task (a 1M night's compact stage 4.6-4.7 -> 3.9-4.0 s, the same CPU).
    winners_writer(new_generation).parquet(path)
    # The night's winners as the files just written, not a cached frame: the plan of every later query that uses
    # them (or the touched ids) stays a scan, not the compaction's whole plan (a 1M night's tables: 9.8-10.2 ->
    # 8.6 s).
    winners = read_table(spark, path, schema)
    # The rejected lines of earlier files never change: carried as files, the new ones added beside them.
    storage.copy_tree(join(base_state, "rejects"), join(new_state, "rejects"))
    rejects.write.mode("append").parquet(join(new_state, "rejects"))
    return Compacted(winners.select("appointment_id"), counted.get["rows"], old, winners), written


def newest_generation(state: DataFrame) -> DataFrame:
    """State rows -> each appointment's row in the newest generation that holds it (its current winner)."""
    newest = F.max(GENERATION).over(Window.partitionBy("appointment_id"))
    return state.withColumn("_newest", newest).filter(F.col(GENERATION) == F.col("_newest")).drop("_newest")


def stage_tables(spark, storage: Storage, base_version: str, base_rows: Dict[str, int], base_reach: Dict[str, List[str]],
                 new_version: str, night: Compacted, line_rejects: DataFrame, timezone: str, advisors,
                 on_written: Callable[[str, DataFrame, int], None]) -> Nightly:
    """Every table of the new version: the partitions the touched appointments reach recomputed, the others
    carried forward from `base_version` (whose tables hold `base_rows` and whose state has the booking reach
    `base_reach`), and the new appointments table's duplicate ids (the gate's whole-table uniqueness). Each table,
    once written, goes to `on_written` as a read of its recomputed partitions with the rows written into them."""
    result = Nightly()
    touched = night.touched

    def replace(name: str, df: DataFrame, recomputed: Set[str]) -> None:
        _replace(spark, storage, result, base_version, base_rows[name], new_version, name, df, recomputed)
        schema, column = TABLES[name]
        on_written(name, read_table(spark, join(new_version, name), schema).filter(within(column, recomputed)), result.written[name])

    def trends() -> None:
        table, changed, result.booking_reach = _trends(spark, base_version, booked, timezone, booking_days, base_reach)
        replace("booking_trends_daily", table.filter(within("date", changed)), changed)
        table.unpersist()

    def duplicate_ids() -> None:
        # An appointment the night did not touch has the rows it had in the current version (carried, or kept in
        # a recomputed partition), where its id was unique (that version's gate checked it, unless it was
        # published with --skip-quality): only a touched appointment can be in two rows now. Its rows are found
        # with one scan of the id column, not a count of every distinct id (a shuffle of the whole table, 3.4 s
        # of a 1M night).
        rows = appointments.select("appointment_id").join(F.broadcast(touched), "appointment_id", "left_semi")
        counts = rows.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("appointment_id").alias("ids")).first()
        result.duplicate_appointment_ids = counts["rows"] - counts["ids"]

    valid, image_rejects = compaction.split_checked(night.winners)
    new_rows = aggregates.appointments_table(valid, timezone).persist(StorageLevel.MEMORY_AND_DISK)
    new_quarantine = aggregates.quarantine_table(line_rejects, image_rejects)
    try:
        # The touched appointments' old rows in the tables are their old winners' rows (the tables are made from
        # the state): the dates they reach come from those and the new rows, in one small query.
        old_winners = night.old_winners.join(F.broadcast(touched), "appointment_id", "left_semi")
        old_rows = old_winners.filter(compaction.is_appointment()).select(aggregates.appointment_date(timezone), "created_at")
        dates, booking_days, ingest_dates = _reached(
            old_rows, new_rows, old_winners.filter(compaction.is_rejected()), new_quarantine, timezone
        )
        # A night's queries are small: one after another they kept one of two local cores busy, most of the
        # time spent planning and scheduling. The tables that do not depend on each other are written side by
        # side (Spark runs jobs from several threads at once); every branch ends before the stage does.
        with _Branches() as branches:
            branches.start(replace, "quarantine", _quarantine(spark, base_version, touched, new_quarantine, ingest_dates), ingest_dates)
            old = _table(spark, base_version, "appointments")
            kept = old.filter(within("appointment_date", dates)).join(F.broadcast(touched), "appointment_id", "left_anti")
            replace("appointments", kept.unionByName(new_rows), dates)

            appointments = _table(spark, new_version, "appointments")
            load = aggregates.advisor_daily_load(appointments.filter(within("appointment_date", dates)), advisors)
            branches.start(replace, "advisor_daily_load", load, dates)
            # The rows booked on the reached days: an untouched one lies within its day's reach in the current
            # table, a touched one's new row on one of `dates`.
            old_dates = partitions(storage, join(base_version, "appointments"), "appointment_date")
            read = {date for date in old_dates if _reached_by(date, booking_days, base_reach)} | dates
            result.trends_read = [len(read), len(set(old_dates) | dates)]
            booked = appointments.filter(within("appointment_date", read))
            branches.start(trends)
            branches.start(duplicate_ids)
    finally:
        new_rows.unpersist()
    return result


class _Branches:
    """Steps run on threads beside the caller's; leaving the block waits for every one and raises the first
    error (so no branch still writes once the stage has ended, whichever way it ends)."""

    def __enter__(self) -> "_Branches":
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="advising-night")
        self._futures = []
        return self

    def start(self, step, *args) -> None:
        self._futures.append(self._pool.submit(step, *args))

    def __exit__(self, error_type, error, traceback) -> None:
        self._pool.shutdown(wait=True)
        if error_type is None:  # else the caller's own error stands
            for future in self._futures:
                future.result()


def _trends(spark, base_version: str, booked: DataFrame, timezone: str, booking_days: Set[str], base_reach: Dict[str, List[str]]):
    """The whole booking_trends_daily table as a full run computes it, the dates whose rows changed, and the new
    booking reach. Only the `booking_days` (those of the touched appointments' old and new rows) are aggregated
    again, from `booked` (the new appointments table's rows on the dates those days reach): every other day's
    bookings, counts and lead-time percentiles are the current table's own rows (a day with bookings has
    bookings_created >= 1; a zero-filled day has 0), exactly what the aggregation would give again. The small
    table (departments x days) is then made from both, as in a full run. The exact percentiles over every row of
    the history were the night's largest aggregation (a 1M night, whose touched appointments were booked on 36 of
    89 days: task CPU 25.9-27.4 -> 22.4-22.9 s, the night 29.5-31.2 -> 27.7-29.0 s); reading only the reached
    dates keeps the scan to the weeks a night reaches, whatever the history's length."""
    old = _table(spark, base_version, "booking_trends_daily")
    aggregated, reach = observe_reach(aggregates.daily_bookings(booked, timezone).filter(within("date", booking_days)))
    carried = old.filter(~within("date", booking_days) & (F.col("bookings_created") > 0)).select(
        "department", "date", "bookings_created", "cancelled_count",
        F.array("median_lead_time_hours", "p90_lead_time_hours").alias("q"),
        *[F.lit(None).cast("date").alias(name) for name in ("first_appointment_date", "last_appointment_date")],
    )
    trends = aggregates.trends_from_daily(aggregated.unionByName(carried)).persist(StorageLevel.MEMORY_AND_DISK)
    # Compared row by row on the driver (a join of the two would be a query of its own): only the dates whose
    # rows changed are written again.
    before, after = ({(row["department"], row["date"]): row for row in table.collect()} for table in (old, trends))
    changed = {date.isoformat() for (department, date) in before.keys() | after.keys()
               if before.get((department, date)) != after.get((department, date))}
    kept = {day: span for day, span in base_reach.items() if day not in booking_days}
    return trends, changed, {**kept, **reach_by_day(reach)}


def _reached_by(date: str, booking_days: Set[str], reach: Dict[str, List[str]]) -> bool:
    """Whether an appointment booked on one of `booking_days` can lie on `date` (ISO dates)."""
    return any(reach[day][0] <= date <= reach[day][1] for day in booking_days if day in reach)


def _quarantine(spark, base_version: str, touched: DataFrame, new: DataFrame, ingest_dates: Set[str]) -> DataFrame:
    """The recomputed quarantine partitions (`ingest_dates`): their rows but the touched appointments' old image
    rejects, and the `new` rows (the night's rejected lines and the new winners' image rejects)."""
    old = _table(spark, base_version, "quarantine").filter(within("ingest_date", ingest_dates))
    is_image = F.col("reason").isin(*compaction.IMAGE_REASONS)
    flagged = old.join(F.broadcast(touched.select("appointment_id", F.lit(True).alias("_touched"))), "appointment_id", "left")
    kept = flagged.filter(~(is_image & F.col("_touched").isNotNull()))
    return aggregates.quarantine_table(kept.select(*new.columns), new)


def _table(spark, version: str, name: str) -> DataFrame:
    return read_table(spark, join(version, name), TABLES[name][0])


def within(column: str, values):
    """`column` (a date partition column) is one of the ISO dates `values`: pruned to those folders."""
    return F.col(column).isin(*[dt.date.fromisoformat(v) for v in sorted(values)])


def _reached(old_rows: DataFrame, new_rows: DataFrame, old_rejects: DataFrame, new_rejects: DataFrame, timezone: str):
    """(appointment dates, booking days, quarantine ingest dates) as partition folder values (ISO dates): the
    appointment and booking dates of the touched appointments' old and new rows, and the ingest dates of the old
    image rejects and the new quarantine rows; one query over small frames."""
    def dates(rows: DataFrame, kind: str, date: Column) -> DataFrame:
        return rows.select(F.lit(kind).alias("kind"), date.alias("date"))

    tagged = [
        frame
        for rows in (old_rows, new_rows)
        for frame in (dates(rows, "appointment", F.col("appointment_date")),
                      dates(rows, "booking", aggregates.booking_date(timezone)))
    ] + [dates(rows, "ingest", F.col("ingest_date")) for rows in (old_rejects, new_rejects)]
    found = reduce(DataFrame.union, tagged).distinct().collect()
    return tuple({row["date"].isoformat() for row in found if row["kind"] == kind and row["date"] is not None}
                 for kind in ("appointment", "booking", "ingest"))


def _replace(spark, storage: Storage, result: Nightly, base_version: str, base_rows: int, new_version: str, name: str,
             df: DataFrame, recomputed: Set[str]) -> None:
    """Table `name` of the new version: the partitions of the current version not in `recomputed` copied over,
    then `df` (the recomputed partitions' rows) written beside them."""
    schema, column = TABLES[name]
    source, target = join(base_version, name), join(new_version, name)
    _carry(storage, source, target, column, recomputed)
    carried_rows = base_rows - read_table(spark, source, schema).filter(within(column, recomputed)).count()
    written = write_table(df, target, column, mode="append")
    if carried_rows + written == 0:
        write_empty_table(spark, target, schema)
    result.recomputed[name] = sorted(recomputed)
    result.written[name] = written
    result.rows[name] = carried_rows + written


def partitions(storage: Storage, table: str, column: str) -> List[str]:
    """The values of a table folder's `column=value` partition folders."""
    return [child[len(column) + 1:] for child in storage.children(table) if child.startswith(f"{column}=")]


def _carry(storage: Storage, source: str, target: str, column: str, recomputed: Set[str]) -> None:
    """Copy every `column=value` partition folder of `source` whose value is not recomputed into `target`."""
    for value in partitions(storage, source, column):
        if value not in recomputed:
            storage.copy_tree(join(source, f"{column}={value}"), join(target, f"{column}={value}"))
