"""The data contract in code: input line schema, allowed values, quarantine reasons and output schemas.

Everything here mirrors ../shared/design/data-contract.md (documented for analysts in docs/data-contract.md);
a change here is a contract change. Readers use these schemas explicitly: nothing is inferred.
"""
from __future__ import annotations

from pyspark.sql import types as T

from common.change_log import UNCONVERTIBLE_FIELD

EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
STATUSES = ("BOOKED", "CANCELLED", "COMPLETED", "NO_SHOW")
MIN_DURATION_MINUTES = 5
MAX_DURATION_MINUTES = 480

# One change-log line. Images stay raw JSON text here: only the winning image of each appointment is
# parsed and checked (rule 5), which is far cheaper than parsing every image of the log.
LINE_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("event_name", T.StringType()),
        T.StructField("sequence_number", T.StringType()),
        T.StructField("approximate_creation_time", T.StringType()),
        T.StructField("keys", T.StructType([T.StructField("appointment_id", T.StringType())])),
        T.StructField("new_image", T.StringType()),
        # Present only on a line the sink could not convert (any JSON value, read as its text).
        T.StructField(UNCONVERTIBLE_FIELD, T.StringType()),
    ]
)

IMAGE_STRING_FIELDS = ("appointment_id", "student_id", "advisor_id", "department", "status")
IMAGE_TIMESTAMP_FIELDS = ("start_time", "created_at", "updated_at")

ADVISORS_SCHEMA = T.StructType(
    [
        T.StructField("advisor_id", T.StringType()),
        T.StructField("advisor_name", T.StringType()),
        T.StructField("department", T.StringType()),
        T.StructField("daily_capacity_minutes", T.StringType()),
    ]
)

# Output tables: column order as written, partition column last (it lives in the folder name).
APPOINTMENTS_SCHEMA = T.StructType(
    [
        T.StructField("appointment_id", T.StringType(), False),
        T.StructField("student_id", T.StringType(), False),
        T.StructField("advisor_id", T.StringType(), False),
        T.StructField("department", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("channel", T.StringType(), True),
        T.StructField("start_time", T.TimestampType(), False),
        T.StructField("created_at", T.TimestampType(), False),
        T.StructField("updated_at", T.TimestampType(), False),
        T.StructField("end_time", T.TimestampType(), False),
        T.StructField("duration_minutes", T.IntegerType(), False),
        T.StructField("lead_time_hours", T.DoubleType(), False),
        T.StructField("appointment_date", T.DateType(), False),
    ]
)

ADVISOR_DAILY_LOAD_SCHEMA = T.StructType(
    [
        T.StructField("advisor_id", T.StringType(), False),
        T.StructField("department", T.StringType(), True),
        T.StructField("scheduled_count", T.LongType(), False),
        T.StructField("completed_count", T.LongType(), False),
        T.StructField("no_show_count", T.LongType(), False),
        T.StructField("cancelled_count", T.LongType(), False),
        T.StructField("booked_minutes", T.LongType(), False),
        T.StructField("distinct_students", T.LongType(), False),
        T.StructField("capacity_minutes", T.LongType(), True),
        T.StructField("utilization", T.DoubleType(), True),
        T.StructField("no_show_rate", T.DoubleType(), True),
        T.StructField("date", T.DateType(), False),
    ]
)

BOOKING_TRENDS_DAILY_SCHEMA = T.StructType(
    [
        T.StructField("department", T.StringType(), False),
        T.StructField("bookings_created", T.LongType(), False),
        T.StructField("cancelled_count", T.LongType(), False),
        T.StructField("cancellation_rate", T.DoubleType(), True),
        T.StructField("median_lead_time_hours", T.DoubleType(), True),
        T.StructField("p90_lead_time_hours", T.DoubleType(), True),
        T.StructField("bookings_7d_avg", T.DoubleType(), False),
        T.StructField("date", T.DateType(), False),
    ]
)

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("reason", T.StringType(), False),
        T.StructField("record", T.StringType(), True),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("appointment_id", T.StringType(), True),
        T.StructField("ingest_date", T.DateType(), False),
    ]
)

# table name -> (schema, partition column)
TABLES = {
    "appointments": (APPOINTMENTS_SCHEMA, "appointment_date"),
    "advisor_daily_load": (ADVISOR_DAILY_LOAD_SCHEMA, "date"),
    "booking_trends_daily": (BOOKING_TRENDS_DAILY_SCHEMA, "date"),
    "quarantine": (QUARANTINE_SCHEMA, "ingest_date"),
}
