"""Step 3 of the flow: the snapshot -> the published tables (contract section 4).

Pure DataFrame -> DataFrame functions. Every local date is computed with the one configured IANA zone;
timestamps stay UTC instants.
"""
from __future__ import annotations

from typing import Optional

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.contract import ADVISOR_DAILY_LOAD_SCHEMA, APPOINTMENTS_SCHEMA, BOOKING_TRENDS_DAILY_SCHEMA, QUARANTINE_SCHEMA

_MICROS_PER_HOUR = 3_600_000_000.0


def local_date(ts: Column, timezone: str) -> Column:
    """The calendar date of a UTC instant in the campus zone (DST-aware)."""
    return F.to_date(F.from_utc_timestamp(ts, timezone))


def appointment_date(timezone: str) -> Column:
    """An appointment's `appointment_date` (its table's partition): the campus date of its start_time."""
    return local_date(F.col("start_time"), timezone).alias("appointment_date")


def booking_date(timezone: str) -> Column:
    """An appointment's booking day (a `booking_trends_daily` row's date): the campus date of its created_at."""
    return local_date(F.col("created_at"), timezone)


def _ordered(df: DataFrame, schema) -> DataFrame:
    return df.select(*[F.col(field.name).cast(field.dataType) for field in schema.fields])


def appointments_table(appointments: DataFrame, timezone: str) -> DataFrame:
    """Typed snapshot rows -> the `appointments` table (derived columns added)."""
    start, created = F.col("start_time"), F.col("created_at")
    return _ordered(
        appointments.select(
            "*",
            F.timestamp_micros(F.unix_micros(start) + F.col("duration_minutes").cast("long") * 60_000_000).alias("end_time"),
            ((F.unix_micros(start) - F.unix_micros(created)) / _MICROS_PER_HOUR).alias("lead_time_hours"),
            appointment_date(timezone),
        ),
        APPOINTMENTS_SCHEMA,
    )


def advisor_daily_load(appointments: DataFrame, advisors: Optional[DataFrame]) -> DataFrame:
    """`appointments` table + advisors dimension (advisor_id, department, capacity_minutes) -> load per advisor-day."""
    status = F.col("status")
    active = status != "CANCELLED"

    def count_where(condition: Column) -> Column:
        return F.count(F.when(condition, True))

    # Two levels instead of a countDistinct beside the other aggregates (which Spark plans as an Expand of
    # every row and two shuffles): per advisor-day-student first, then per advisor-day, where a student with an
    # active appointment counts once. Both levels group by the advisor-day's columns first, so one shuffle by
    # those serves them (1M appointments: 1.7-1.9 -> 1.3-1.5 s warm, the same rows).
    day = [F.col("appointment_date").alias("date"), "advisor_id"]
    per_student = appointments.repartition("appointment_date", "advisor_id").groupBy(*day, "student_id").agg(
        count_where(active).alias("active"),
        count_where(status == "COMPLETED").alias("completed"),
        count_where(status == "NO_SHOW").alias("no_show"),
        count_where(status == "CANCELLED").alias("cancelled"),
        F.sum(F.when(active, F.col("duration_minutes").cast("long"))).alias("minutes"),
    )
    load = per_student.groupBy("date", "advisor_id").agg(
        F.sum("active").alias("scheduled_count"),
        F.sum("completed").alias("completed_count"),
        F.sum("no_show").alias("no_show_count"),
        F.sum("cancelled").alias("cancelled_count"),
        F.coalesce(F.sum("minutes"), F.lit(0)).alias("booked_minutes"),
        count_where(F.col("active") > 0).alias("distinct_students"),
    )
    if advisors is None:
        load = load.select("*", F.lit(None).cast("string").alias("department"), F.lit(None).cast("long").alias("capacity_minutes"))
    else:
        load = load.join(F.broadcast(advisors.select("advisor_id", "department", "capacity_minutes")), "advisor_id", "left")
    attended = F.col("completed_count") + F.col("no_show_count")
    return _ordered(
        load.select(
            "*",
            (F.col("booked_minutes") / F.col("capacity_minutes")).alias("utilization"),
            F.when(attended > 0, F.col("no_show_count") / attended).alias("no_show_rate"),
        ),
        ADVISOR_DAILY_LOAD_SCHEMA,
    )


def daily_bookings(appointments: DataFrame, timezone: str) -> DataFrame:
    """`appointments` table -> one row per department and local booking date with bookings: department,
    date, bookings_created, cancelled_count, q (the exact median and p90 lead times), and the first and last
    appointment_date booked that day (not published: where a nightly run finds that day's rows, jobs.incremental)."""
    booked = appointments.select(
        "department", booking_date(timezone).alias("date"), "status", "lead_time_hours", "appointment_date"
    )
    return booked.groupBy("department", "date").agg(
        F.count(F.lit(1)).alias("bookings_created"),
        F.count(F.when(F.col("status") == "CANCELLED", True)).alias("cancelled_count"),
        F.sort_array(F.collect_list("lead_time_hours")).alias("leads"),
        F.min("appointment_date").alias("first_appointment_date"),
        F.max("appointment_date").alias("last_appointment_date"),
    ).select(
        "department", "date", "bookings_created", "cancelled_count",
        F.array(*[_exact_percentile(F.col("leads"), fraction) for fraction in (0.5, 0.9)]).alias("q"),
        "first_appointment_date", "last_appointment_date",
    )


def _exact_percentile(ordered: Column, fraction: float) -> Column:
    """The exact percentile of an ascending array, bit for bit what Spark's `percentile` gives (not
    percentile_approx): the value at rank (n - 1) * fraction, interpolated linearly between the two ranks
    around it (tests/jobs/test_aggregates.py compares the two). Computed from the day's sorted lead times
    rather than by `percentile` itself, whose per-group buffer is a hash map of boxed values serialised between
    the partial and the final aggregation: a 1M night's trends query 3.0-3.1 -> 1.7 task CPU s (C1 only), the
    whole 1M table's aggregation, warm, 1.2-1.4 -> 0.7-0.9 s."""
    position = (F.size(ordered) - 1) * F.lit(fraction)
    lower, higher = F.floor(position), F.ceil(position)
    low, high = F.get(ordered, lower.cast("int")), F.get(ordered, higher.cast("int"))
    # The same three cases as Spark's: a whole rank, two equal values, else the interpolation.
    return F.when((lower == higher) | (low == high), low).otherwise((higher - position) * low + (position - lower) * high)


def trends_from_daily(daily: DataFrame) -> DataFrame:
    """`daily_bookings` rows -> the `booking_trends_daily` table: bookings per department and local booking date,
    zero-filled between each department's first and last booking date, with a trailing 7-day average."""
    by_department = Window.partitionBy("department").orderBy("date")
    # Each day with bookings stands for itself and the days without bookings up to the department's next one:
    # exploded into them, the rows are every day from the department's first booking date to its last, with no
    # calendar to build and join (one shuffle, by department, serves this window and the 7-day one).
    until = F.coalesce(F.date_sub(F.lead("date").over(by_department), 1), F.col("date"))
    # A column first: Spark takes no window function inside a generator.
    filled = daily.withColumn("until", until).select("*", F.explode(F.sequence(F.col("date"), F.col("until"))).alias("day"))
    own = F.col("day") == F.col("date")
    bookings = F.when(own, F.col("bookings_created")).otherwise(F.lit(0))
    # Rows are consecutive days per department, so the 7-day window is the last 7 rows; days before a
    # department's first booking have no row and count 0, as the contract wants.
    last_7_days = Window.partitionBy("department").orderBy("day").rowsBetween(-6, 0)
    return _ordered(
        filled.select(
            "department",
            F.col("day").alias("date"),
            bookings.alias("bookings_created"),
            F.when(own, F.col("cancelled_count")).otherwise(F.lit(0)).alias("cancelled_count"),
            F.when(bookings > 0, F.col("cancelled_count") / bookings).alias("cancellation_rate"),
            F.when(own, F.col("q")[0]).alias("median_lead_time_hours"),
            F.when(own, F.col("q")[1]).alias("p90_lead_time_hours"),
            (F.sum(bookings).over(last_7_days) / 7.0).alias("bookings_7d_avg"),
        ),
        BOOKING_TRENDS_DAILY_SCHEMA,
    )


def quarantine_table(*rejects: DataFrame) -> DataFrame:
    """Union of quarantine rows from every rule, in the table's column order."""
    result = rejects[0]
    for more in rejects[1:]:
        result = result.unionByName(more)
    return _ordered(result, QUARANTINE_SCHEMA)
