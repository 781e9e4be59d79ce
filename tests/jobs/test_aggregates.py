"""Output tables (contract section 4) on small hand-built snapshots."""
import datetime as dt

import pytest
from chispa import assert_df_equality

from jobs.aggregates import advisor_daily_load, appointments_table, daily_bookings, trends_from_daily

SNAPSHOT_SCHEMA = (
    "appointment_id string, student_id string, advisor_id string, department string, status string, channel string, "
    "start_time timestamp, created_at timestamp, updated_at timestamp, duration_minutes int"
)


def booking_trends_daily(appointments, timezone):
    """The booking_trends_daily table as a full run makes it (jobs.pipeline)."""
    return trends_from_daily(daily_bookings(appointments, timezone))


def appt(aid, start, created=None, status="BOOKED", advisor="adv1", student="s1", dept="Math", minutes=30):
    created = created or start - dt.timedelta(hours=24)
    return (aid, student, advisor, dept, status, None, start, created, created, minutes)


def table(spark, rows, timezone="UTC"):
    return appointments_table(spark.createDataFrame(rows, SNAPSHOT_SCHEMA), timezone)


def test_derived_columns(spark):
    start = dt.datetime(2026, 9, 3, 15, 0)
    row = table(spark, [appt("a1", start, created=dt.datetime(2026, 9, 3, 16, 30), minutes=45)]).first()
    assert row["end_time"] == dt.datetime(2026, 9, 3, 15, 45)
    assert row["lead_time_hours"] == -1.5
    assert row["appointment_date"] == dt.date(2026, 9, 3)


@pytest.mark.parametrize(
    "timezone, start_utc, local",
    [
        ("America/Chicago", dt.datetime(2026, 9, 2, 4, 59), dt.date(2026, 9, 1)),  # 23:59 CDT
        ("America/Chicago", dt.datetime(2026, 9, 2, 5, 0), dt.date(2026, 9, 2)),  # 00:00 CDT
        ("America/Chicago", dt.datetime(2026, 1, 2, 5, 59), dt.date(2026, 1, 1)),  # 23:59 CST: the offset follows DST
        ("Asia/Kolkata", dt.datetime(2026, 9, 1, 18, 29), dt.date(2026, 9, 1)),  # 23:59 IST
        ("Asia/Kolkata", dt.datetime(2026, 9, 1, 18, 30), dt.date(2026, 9, 2)),
        ("Pacific/Auckland", dt.datetime(2026, 9, 1, 12, 0), dt.date(2026, 9, 2)),
        ("UTC", dt.datetime(2026, 9, 1, 23, 59, 59, 999999), dt.date(2026, 9, 1)),
    ],
)
def test_local_dates_around_midnight(spark, timezone, start_utc, local):
    rows = table(spark, [appt("a1", start_utc, created=start_utc)], timezone)
    assert rows.first()["appointment_date"] == local
    assert booking_trends_daily(rows, timezone).first()["date"] == local
    assert advisor_daily_load(rows, None).first()["date"] == local


def test_advisor_daily_load_counts_and_rates(spark):
    day = dt.datetime(2026, 9, 3, 15, 0)
    rows = table(
        spark,
        [
            appt("a1", day, status="COMPLETED", student="s1", minutes=30),
            appt("a2", day, status="NO_SHOW", student="s1", minutes=60),
            appt("a3", day, status="CANCELLED", student="s2", minutes=45),
            appt("a4", day, status="BOOKED", student="s3", minutes=20),
            # s3 also cancelled one: still one student with an active appointment, and no minutes for it
            appt("a5", day, status="CANCELLED", student="s3", minutes=15),
            appt("b1", day, status="CANCELLED", advisor="ghost", minutes=30),
        ],
    )
    advisors = spark.createDataFrame([("adv1", "Advising", 400)], "advisor_id string, department string, capacity_minutes long")
    result = advisor_daily_load(rows, advisors)
    expected = spark.createDataFrame(
        [
            ("adv1", "Advising", 3, 1, 1, 2, 110, 2, 400, 110 / 400, 0.5, dt.date(2026, 9, 3)),
            ("ghost", None, 0, 0, 0, 1, 0, 0, None, None, None, dt.date(2026, 9, 3)),
        ],
        result.schema,
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_unlisted_advisor_has_no_department_capacity_or_utilization(spark):
    rows = table(spark, [appt("a1", dt.datetime(2026, 9, 3, 15, 0))])
    row = advisor_daily_load(rows, None).first()
    assert (row["department"], row["capacity_minutes"], row["utilization"]) == (None, None, None)
    assert row["booked_minutes"] == 30


def test_booking_trends_zero_fill_and_trailing_7_day_average(spark):
    def booked(aid, day, status="BOOKED", dept="Math"):
        created = dt.datetime(2026, 9, day, 12, 0)
        return appt(aid, created + dt.timedelta(hours=10), created=created, status=status, dept=dept)

    rows = table(spark, [booked("a1", 1), booked("a2", 1, "CANCELLED"), booked("a3", 4), booked("a4", 9), booked("p1", 5, dept="Physics")])
    result = {(r["department"], r["date"].day): r for r in booking_trends_daily(rows, "UTC").collect()}
    assert sorted(day for dept, day in result if dept == "Math") == list(range(1, 10))
    assert sorted(day for dept, day in result if dept == "Physics") == [5]
    assert [result[("Math", d)]["bookings_created"] for d in range(1, 10)] == [2, 0, 0, 1, 0, 0, 0, 0, 1]
    assert result[("Math", 2)]["cancellation_rate"] is None
    assert [result[("Math", d)]["cancelled_count"] for d in range(1, 10)] == [1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert result[("Math", 2)]["median_lead_time_hours"] is None and result[("Math", 2)]["p90_lead_time_hours"] is None
    assert result[("Math", 4)]["median_lead_time_hours"] == pytest.approx(10.0)
    assert result[("Math", 1)]["cancellation_rate"] == 0.5
    assert result[("Math", 1)]["bookings_7d_avg"] == pytest.approx(2 / 7)
    assert result[("Math", 7)]["bookings_7d_avg"] == pytest.approx(3 / 7)
    assert result[("Math", 8)]["bookings_7d_avg"] == pytest.approx(1 / 7)  # day 1 has left the window
    assert result[("Math", 9)]["bookings_7d_avg"] == pytest.approx(2 / 7)
    assert result[("Physics", 5)]["bookings_7d_avg"] == pytest.approx(1 / 7)


def test_exact_median_and_p90_with_linear_interpolation(spark):
    created = dt.datetime(2026, 9, 1, 8, 0)
    leads = [1, 2, 3, 4, 10]
    rows = table(spark, [appt(f"a{h}", created + dt.timedelta(hours=h), created=created) for h in leads])
    row = booking_trends_daily(rows, "UTC").first()
    assert row["median_lead_time_hours"] == 3.0
    # rank 0.9 * 4 = 3.6 -> 4 + 0.6 * (10 - 4)
    assert row["p90_lead_time_hours"] == pytest.approx(7.6, abs=1e-12)
    even = table(spark, [appt(f"a{h}", created + dt.timedelta(hours=h), created=created) for h in [1, 2, 3, 4]])
    row = booking_trends_daily(even, "UTC").first()
    assert row["median_lead_time_hours"] == 2.5
    assert row["p90_lead_time_hours"] == pytest.approx(3.7, abs=1e-12)


def test_percentiles_equal_sparks_own_percentile_bit_for_bit(spark):
    # Days of 1 to 40 bookings whose lead times repeat (whole and odd minutes): every case of the
    # interpolation (a whole rank, two equal values around the rank, two different ones). Two more days
    # whose p90 lies between two equal values that the interpolation would not give back exactly
    # (0.4 * x + 0.6 * x != x for a lead time of 27 minutes, 0.1 * x + 0.9 * x != x for 11 minutes).
    import random

    from pyspark.sql import functions as F

    rng = random.Random(7)
    days = [[rng.choice([rng.randrange(0, 600, 60), rng.randrange(0, 100_000, 7)]) for _ in range(n)] for n in range(1, 41)]
    rows = []
    for day, leads in enumerate(days + [[11, 11], [27] * 5], start=1):
        created = dt.datetime(2026, 9, 1, 8, 0) + dt.timedelta(days=day)
        rows += [appt(f"a{day}-{n}", created + dt.timedelta(minutes=m), created=created) for n, m in enumerate(leads)]
    appointments = table(spark, rows)
    ours = {r["date"]: [value.hex() for value in r["q"]] for r in daily_bookings(appointments, "UTC").collect()}
    sparks = appointments.groupBy(F.to_date("created_at").alias("date")).agg(
        F.expr("percentile(lead_time_hours, array(0.5, 0.9))").alias("q")
    )
    expected = {r["date"]: [value.hex() for value in r["q"]] for r in sparks.collect()}
    assert len(ours) == 42 and ours == expected
