"""Step 2 of the flow: change records -> the current snapshot (contract rules 2-5).

`latest_changes` keeps, per appointment, the one winning change (tombstones for REMOVE included), and
`check_images` adds rule 5's verdict and typed columns to each winner: that is the incremental state, and
feeding its change columns back in with new records gives the same result as replaying the whole log
(rule 6). `split_checked` turns the checked winners into typed appointments or quarantine rows. Pure
DataFrame -> DataFrame functions.
"""
from __future__ import annotations

from typing import Optional, Tuple

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.contract import IMAGE_STRING_FIELDS, IMAGE_TIMESTAMP_FIELDS, MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, STATUSES
from jobs.parsing import parse_timestamp, sequence_key

CHANGE_COLUMNS = (
    "appointment_id",
    "event_id",
    "event_name",
    "sequence_number",
    "approximate_creation_time",
    "new_image",
    "image_is_string",
    "ingest_date",
    "source_file",
)

# What a checked winner keeps of its change (jobs.state: the state's rows): all but the image text, which rule 5
# has turned into the typed columns and, for a rejected image, the quarantine's record. No later step reads the
# image of a checked winner (a night's rules 2-4 never need it, jobs.incremental), and it was half the state's
# bytes: the text a full run encoded, compressed and wrote once per appointment.
CHECKED_CHANGE_COLUMNS = tuple(c for c in CHANGE_COLUMNS if c != "new_image")

# The typed columns of a valid image, as `split_checked` gives them.
APPOINTMENT_COLUMNS = (
    "appointment_id", "student_id", "advisor_id", "department", "status", "channel", *IMAGE_TIMESTAMP_FIELDS, "duration_minutes",
)

# Rule 5's checks in contract order: the first that fails is the reason. The quarantine tells these
# rows (one per winning change) from rule 1's (one per line) by this list.
IMAGE_REASONS = (
    "missing_image",
    "bad_image",
    "bad_appointment_id",
    "bad_student_id",
    "bad_advisor_id",
    "bad_department",
    "bad_status",
    "bad_duration_minutes",
    *(f"bad_{field}" for field in IMAGE_TIMESTAMP_FIELDS),
    "bad_channel",
)

# Every image attribute as text, its JSON type checked separately (see _is_json_string), except
# duration_minutes: only a JSON integer token parses as a long ("30" and 30.0 come out null), and
# partial results (jobs.session) keep the other fields when it fails.
IMAGE_SCHEMA = T.StructType(
    [T.StructField(name, T.StringType()) for name in IMAGE_STRING_FIELDS + IMAGE_TIMESTAMP_FIELDS + ("channel",)]
    + [T.StructField("duration_minutes", T.LongType())]
)


def latest_changes(changes: DataFrame, duplicates: Optional[Observation] = None) -> DataFrame:
    """One row per appointment_id: its winning change (rules 2-4), with the columns of CHANGE_COLUMNS.

    `duplicates`, when given, observes `duplicates`: the copies merged into one change by rule 2, counted
    by the same aggregations (no extra pass over the changes).

    Copies of one event_id are one change; the copy kept is the one in the earliest ingest_date folder
    (then file path), so a quarantined winner reports a stable place whatever order files arrived in.
    The winner has the greatest sequence number as an integer, then the latest creation time, then the
    greatest event_id. Both steps group by appointment_id, so one shuffle serves them.
    """
    by_appointment = changes.select(*CHANGE_COLUMNS).repartition("appointment_id")
    copy = F.struct(
        "ingest_date", "source_file", "sequence_number", "approximate_creation_time", "event_name", "image_is_string", "new_image"
    )
    distinct_changes = by_appointment.groupBy("appointment_id", "event_id").agg(
        F.min(copy).alias("c"), F.count(F.lit(1)).alias("copies")
    )
    c = F.col("c")
    rank = F.struct(
        sequence_key(c["sequence_number"]).alias("seq"),
        c["approximate_creation_time"].alias("act"),
        F.col("event_id").alias("event_id"),
        c.alias("c"),
    )
    winners = distinct_changes.groupBy("appointment_id").agg(
        F.max(rank).alias("w"), (F.sum("copies") - F.count(F.lit(1))).alias("duplicate_copies")
    )
    if duplicates is not None:
        winners = winners.observe(duplicates, F.coalesce(F.sum("duplicate_copies"), F.lit(0)).alias("duplicates"))
    w = F.col("w")
    return winners.select(
        "appointment_id",
        w["event_id"].alias("event_id"),
        w["c"]["event_name"].alias("event_name"),
        w["c"]["sequence_number"].alias("sequence_number"),
        w["c"]["approximate_creation_time"].alias("approximate_creation_time"),
        w["c"]["new_image"].alias("new_image"),
        w["c"]["image_is_string"].alias("image_is_string"),
        w["c"]["ingest_date"].alias("ingest_date"),
        w["c"]["source_file"].alias("source_file"),
    )


def _is_json_string(image: Column, field: str) -> Column:
    """True when the image's top-level `field` is a JSON string.

    from_json's text for a string field cannot tell "30" from 30; the image text is Jackson's compact
    re-serialisation (no spaces), so a string value always appears as "field":"...".
    """
    return image.contains(f'"{field}":"')


def _image_json(image: Column, is_string: Column) -> Column:
    """The image as JSON text: from_json gave a string image's content unquoted, so quote it again
    (to_json of a one-element array escapes it exactly), and a null image is the JSON `null`."""
    quoted = F.to_json(F.array(image))
    return (
        F.when(image.isNull(), F.lit("null"))
        .when(is_string, quoted.substr(F.lit(2), F.length(quoted) - 2))
        .otherwise(image)
    )


def check_images(winners: DataFrame) -> DataFrame:
    """Every winning change (its CHECKED_CHANGE_COLUMNS) plus rule 5: the appointment's typed columns (those of
    `split_checked`'s appointments), `reason` (null when the image is valid, else the first failing rule-5
    check; always null for a REMOVE) and the quarantine's `record` (the image text, on rejected rows only).
    Checked in the same Spark job as the compaction, so the state holds the verdicts and the tables
    never parse an image again."""
    image = F.col("new_image")
    t = F.col("t")
    # The image text is Jackson's re-serialisation of the value: an object, and only an object, starts
    # with "{" (a string image is flagged by the parser, since its unquoted content could too).
    is_object = image.startswith("{") & ~F.col("image_is_string")

    def bad_string(field: str) -> Column:
        value = t[field]
        return value.isNull() | (value == "") | ~_is_json_string(image, field)

    conditions = {
        "missing_image": image.isNull(),
        "bad_image": ~is_object,
        "bad_appointment_id": bad_string("appointment_id") | (t["appointment_id"] != F.col("appointment_id")),
        "bad_student_id": bad_string("student_id"),
        "bad_advisor_id": bad_string("advisor_id"),
        "bad_department": bad_string("department"),
        "bad_status": bad_string("status") | ~t["status"].isin(*STATUSES),
        "bad_duration_minutes": ~t["duration_minutes"].between(MIN_DURATION_MINUTES, MAX_DURATION_MINUTES)
        | t["duration_minutes"].isNull(),
        **{f"bad_{field}": ~_is_json_string(image, field) | F.col(field).isNull() for field in IMAGE_TIMESTAMP_FIELDS},
        "bad_channel": t["channel"].isNotNull() & ~_is_json_string(image, "channel"),
    }
    # A REMOVE has no image to check: the appointment is gone.
    reason = F.when(F.col("event_name") == "REMOVE", F.lit(None).cast("string"))
    reason = reason.when(conditions[IMAGE_REASONS[0]], F.lit(IMAGE_REASONS[0]))
    for code in IMAGE_REASONS[1:]:
        reason = reason.when(conditions[code], F.lit(code))

    parsed = winners.select(*CHANGE_COLUMNS, F.from_json(image, IMAGE_SCHEMA).alias("t"))
    typed = parsed.select("*", *[parse_timestamp(t[field]).alias(field) for field in IMAGE_TIMESTAMP_FIELDS])
    checked = typed.withColumn("reason", reason)
    return checked.select(
        *CHECKED_CHANGE_COLUMNS,
        *[t[field].alias(field) for field in ("student_id", "advisor_id", "department", "status", "channel")],
        *IMAGE_TIMESTAMP_FIELDS,
        t["duration_minutes"].cast("int").alias("duration_minutes"),
        "reason",
        F.when(is_rejected(), _image_json(image, F.col("image_is_string"))).alias("record"),
    )


def state_schema(changes: DataFrame) -> T.StructType:
    """The schema of the state's winners (checked winning changes) for change records of `changes`' schema."""
    return check_images(latest_changes(changes)).schema


def split_checked(checked: DataFrame) -> Tuple[DataFrame, DataFrame]:
    """Checked winners -> (appointments, rejects).

    appointments: appointment_id, student_id, advisor_id, department, status, channel, start_time,
    created_at, updated_at, duration_minutes (int). rejects: the quarantine columns. REMOVE winners are
    in neither: the appointment is simply gone.
    """
    appointments = checked.filter(is_appointment()).select(*APPOINTMENT_COLUMNS)
    rejects = checked.filter(is_rejected()).select("reason", "record", "source_file", "appointment_id", "ingest_date")
    return appointments, rejects


def is_appointment() -> Column:
    """A checked winner that is a row of the appointments table: a valid image, not a REMOVE."""
    return (F.col("event_name") != "REMOVE") & F.col("reason").isNull()


def is_rejected() -> Column:
    """A checked winner that is a row of the quarantine: rule 5 rejected its image."""
    return F.col("reason").isNotNull()
