"""Step 1 of the flow: change-log lines -> typed change records, or quarantine rows (contract rule 1).

Pure DataFrame -> DataFrame functions; reading the files is jobs.storage's job. Images stay raw JSON
text: only the winning image of each appointment is checked, later, in jobs.compaction.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.change_log import UNCONVERTIBLE_FIELD, UNCONVERTIBLE_REASON
from jobs.contract import EVENT_NAMES, LINE_SCHEMA

# Contract timestamp format: exactly this shape; the calendar check is left to to_timestamp.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
_LINES_SCHEMA = T.ArrayType(LINE_SCHEMA)


def parse_timestamp(text: Column) -> Column:
    """Contract timestamp text -> UTC instant (microseconds, extra fraction digits truncated), else null.

    The pattern fixes the shape; Spark's cast then reads it with its hand-written ISO 8601 parser, which
    truncates a fraction to microseconds and gives null for an impossible date, time or offset (hour 24,
    February 30, +24:00). The former form (a second regex to cut the fraction, then a pattern-based
    to_timestamp) gave the same instants, and timestamps were then about 9 s of parsing 2.9M lines
    (tests/jobs/test_parsing.py pins the edge cases)."""
    return F.when(text.rlike(TIMESTAMP_PATTERN), text.cast(T.TimestampType()))


def sequence_key(digits: Column) -> Column:
    """A sort key that orders decimal digit strings of any length as integers: (length, digits) once
    leading zeros are gone. Plain string order would put '9...' (21 digits) after '10...' (22 digits)."""
    stripped = F.regexp_replace(digits, r"^0+", "")
    return F.struct(F.length(stripped).alias("len"), stripped.alias("digits"))


def _is_blank(value: Column) -> Column:
    # A line that starts with "{" is never blank: the regex (which decodes the whole line) runs only on
    # the rare others.
    return ~value.startswith("{") & value.rlike(r"^\s*$")


def _line_values(value: Column) -> Column:
    """The line wrapped in brackets, parsed once as an array of line records.

    One tokenisation proves rule 1's JSON facts: from_json stops after the first value, so a line alone
    would accept trailing text ("{...} garbage", "{...} {...}"); inside brackets that text makes the
    array malformed (null) or adds elements ("{...}, {...}"). A JSON value that is not an object
    (scalar, array, null) is malformed or a null element; a field of the wrong type inside an object
    nulls only that field (partial results, jobs.session).
    """
    return F.from_json(F.concat(F.lit("["), value, F.lit("]")), _LINES_SCHEMA)


def _is_json_string_field(value: Column, field: str, text: Column) -> Column:
    """The raw line gives `field` a JSON string value (from_json renders a number as the same text).

    The compact form the stream sink writes ("field":"text") is a substring test on the UTF-8 bytes;
    only lines spelled otherwise reach the regex, which decodes the whole line."""
    compact = value.contains(F.concat(F.lit(f'"{field}":"'), text, F.lit('"')))
    return compact | value.rlike(f'"{field}"\\s*:\\s*"')


def parse_lines(lines: DataFrame) -> DataFrame:
    """Lines (value, source_file, ingest_date) -> one row per non-blank line.

    Valid rows have `reason` null and typed fields; rejected rows keep the raw line in `record`
    and a snake_case `reason` (first failing check in contract order).
    """
    parsed = lines.filter(~_is_blank(F.col("value"))).select(
        "value", "source_file", "ingest_date", _line_values(F.col("value")).alias("values")
    )
    values, value = F.col("values"), F.col("value")
    j = values[0]
    event_id, event_name = j["event_id"], j["event_name"]
    seq, act_text = j["sequence_number"], j["approximate_creation_time"]
    appointment_id = j["keys"]["appointment_id"]
    act = parse_timestamp(act_text)

    def lacks(col: Column) -> Column:
        return col.isNull() | (col == "")

    # from_json renders any JSON value as text for a string field, so a JSON number 123 and the string
    # "123" look alike; the contract wants a string, which only the raw line can tell.
    seq_is_string = _is_json_string_field(value, "sequence_number", seq)
    not_an_object = values.isNull() | (F.size(values) != 1) | j.isNull()

    reason = (
        F.when(not_an_object, F.lit("invalid_json"))
        # A record the stream sink could not convert, written with the marker so it is never lost (issue 13).
        .when(j[UNCONVERTIBLE_FIELD].isNotNull(), F.lit(UNCONVERTIBLE_REASON))
        .when(lacks(event_id), F.lit("missing_event_id"))
        .when(lacks(event_name), F.lit("missing_event_name"))
        .when(lacks(seq), F.lit("missing_sequence_number"))
        .when(lacks(act_text), F.lit("missing_approximate_creation_time"))
        .when(lacks(appointment_id), F.lit("missing_appointment_id"))
        .when(~event_name.isin(*EVENT_NAMES), F.lit("unknown_event_name"))
        .when(~(seq_is_string & seq.rlike(r"^[0-9]+$")), F.lit("bad_sequence_number"))
        .when(act.isNull(), F.lit("bad_approximate_creation_time"))
    )
    return parsed.select(
        event_id.alias("event_id"),
        event_name.alias("event_name"),
        seq.alias("sequence_number"),
        act.alias("approximate_creation_time"),
        appointment_id.alias("appointment_id"),
        j["new_image"].alias("new_image"),
        # A string where the image belongs ("new_image": "{...}") is not an image, even if its text parses.
        value.rlike(r'"new_image"\s*:\s*"').alias("image_is_string"),
        "ingest_date",
        "source_file",
        reason.alias("reason"),
        F.when(reason.isNotNull(), F.col("value")).alias("record"),
    )


def valid_changes(parsed: DataFrame) -> DataFrame:
    """The change records that passed rule 1."""
    return parsed.filter(F.col("reason").isNull()).drop("reason", "record")


def rejected_lines(parsed: DataFrame) -> DataFrame:
    """Rule-1 quarantine rows: reason, record (the raw line), source_file, appointment_id, ingest_date."""
    return parsed.filter(F.col("reason").isNotNull()).select(
        "reason",
        "record",
        "source_file",
        # Nothing in a line that is not valid JSON is trusted, its key included.
        F.when((F.col("reason") != "invalid_json") & (F.col("appointment_id") != ""), F.col("appointment_id")).alias(
            "appointment_id"
        ),
        "ingest_date",
    )
