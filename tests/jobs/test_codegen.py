"""The code Spark generates for a run's queries stays within what HotSpot compiles.

HotSpot never JIT-compiles a method of more than 8,000 bytes of bytecode (`-XX:+DontCompileHugeMethods`, on by
default), so a whole-stage method that grows past it runs interpreted for the whole run, several times slower
(docs/performance.md: round 11, rule 5 twice as slow with one arithmetic form of the timestamp parse; round 22, a
parse 29.7 instead of 17.9 s warm with rule 5's verdict given twice in one stage). A change to a rule's
expressions can cross that line and pass every other test.
"""
import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs import aggregates, compaction, parsing
from jobs.contract import APPOINTMENTS_SCHEMA
from jobs.parsing import parse_timestamp

HUGE_METHOD_BYTES = 8000
ZONE = "America/New_York"


@pytest.fixture
def planned_whole(spark):
    """Adaptive execution off while the test plans its queries: an adaptive plan holds its stages' generated code
    only once it has run."""
    key = "spark.sql.adaptive.enabled"
    before = spark.conf.get(key)
    spark.conf.set(key, "false")
    yield
    spark.conf.set(key, before)


def largest_method(df) -> int:
    """Bytes of bytecode of the largest method in the generated code of `df`'s physical plan."""
    stages = df.sparkSession._jvm.org.apache.spark.sql.execution.debug.package.codegenStringSeq(
        df._jdf.queryExecution().executedPlan()
    )
    sizes = [stages.apply(i)._3().maxMethodCodeSize() for i in range(stages.size())]
    assert sizes, "the plan has no generated code"
    return max(sizes)


def run_queries(spark):
    """A full run's queries, over one-row inputs (a frame of local rows, not folded away by the optimizer)."""
    lines = spark.createDataFrame([("{}", "/f.jsonl", dt.date(2026, 9, 1))], "value string, source_file string, ingest_date date")
    parsed = parsing.parse_lines(lines)
    winners = compaction.check_images(compaction.latest_changes(parsing.valid_changes(parsed)))
    valid, image_rejects = compaction.split_checked(winners)
    start = dt.datetime(2026, 9, 2, 14, 0, tzinfo=dt.timezone.utc)
    appointments = spark.createDataFrame(
        [("a1", "s1", "v1", "Math", "BOOKED", "web", start, start, start, start, 30, 1.0, dt.date(2026, 9, 2))], APPOINTMENTS_SCHEMA
    )
    advisors = spark.createDataFrame([("v1", "Math", 480)], "advisor_id string, department string, capacity_minutes long")
    return {
        "parse": parsed,
        "compaction": winners,
        "appointments": aggregates.appointments_table(valid, ZONE),
        "advisor_daily_load": aggregates.advisor_daily_load(appointments, advisors),
        "booking_trends_daily": aggregates.trends_from_daily(aggregates.daily_bookings(appointments, ZONE)),
        "quarantine": aggregates.quarantine_table(parsing.rejected_lines(parsed), image_rejects),
    }


@pytest.mark.parametrize("query", ["parse", "compaction", "appointments", "advisor_daily_load", "booking_trends_daily", "quarantine"])
def test_every_generated_method_is_small_enough_to_compile(spark, planned_whole, query):
    assert largest_method(run_queries(spark)[query]) < HUGE_METHOD_BYTES


def test_a_method_too_large_to_compile_is_found(spark, planned_whole):
    # The measure itself: a CASE WHEN over many timestamp parses, as rule 5's verdict is, is one method past it.
    texts = spark.createDataFrame([("2026-09-01T10:00:00",)], "t string")
    verdict = F.when(F.lit(False), F.lit(None))
    for n in range(16):
        verdict = verdict.when(parse_timestamp(F.concat(texts["t"], F.lit(f".{n}Z"))).isNull(), F.lit(n))
    assert largest_method(texts.select(verdict.alias("verdict"))) >= HUGE_METHOD_BYTES
