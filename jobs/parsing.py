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

# Contract timestamp format: exactly this shape; the calendar check is left to the cast (parse_timestamp).
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
_LINES_SCHEMA = T.ArrayType(LINE_SCHEMA)


def parse_timestamp(text: Column) -> Column:
    """Contract timestamp text -> UTC instant (microseconds, extra fraction digits truncated), else null.

    The pattern fixes the shape; Spark's cast then reads it with its hand-written ISO 8601 parser, which
    truncates a fraction to microseconds and gives null for an impossible date, time or offset (hour 24,
    February 30, +24:00). Nearly every text ends in "Z": those are read without the "Z" as a zone-less
    time, which the cast to an instant then takes as UTC (the session zone, jobs.session.CONTRACT_SETTINGS).
    The same instants as casting the text with its zone (tests/jobs/test_parsing.py pins the edge cases;
    200,000 random texts agreed), at under half the cost: the zone-less read skips the zone lookup, which
    was most of a timestamp's parse (2.6M timestamps, warm, the regex included: 2.5 s with the "Z" swapped
    for "+00:00" as before, 2.0 s with the "Z" cast as a zone name, 1.1 s then). The "Z" is cut off the UTF-8
    bytes (a text the pattern matched is ASCII): a string's substr and length count its characters, about a
    third of what was left (2.9M timestamps, warm: 1.1 -> 0.8 s). Kept small on purpose:
    rule 5 parses three of these in one generated method, and one past 8,000 bytes of bytecode is never
    JIT-compiled (an arithmetic form of the offset made check_images' method 10,151 bytes and the rule
    twice as slow)."""
    without_z = text.cast("binary").substr(F.lit(1), F.octet_length(text) - 1).cast("string")
    utc = without_z.cast(T.TimestampNTZType()).cast(T.TimestampType())
    return F.when(text.rlike(TIMESTAMP_PATTERN), F.when(text.endswith("Z"), utc).otherwise(text.cast(T.TimestampType())))


def sequence_key(digits: Column) -> Column:
    """A sort key that orders decimal digit strings of any length as integers: (length, digits) once
    leading zeros are gone. Plain string order would put '9...' (21 digits) after '10...' (22 digits).

    Computed for every change the compaction ranks, so kept cheap: the regex only for the rare number with a
    leading zero, and the length in bytes, which for the ASCII digits rule 1 lets through is the length in
    characters without counting them (1M appointments' compaction warm: 7.5-8.3 -> 7.2-7.7 s)."""
    stripped = F.when(digits.startswith("0"), F.regexp_replace(digits, r"^0+", "")).otherwise(digits)
    return F.struct(F.octet_length(stripped).alias("len"), stripped.alias("digits"))


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


def _is_json_string_field(value: Column, field: str, compact: Column, compact_is_string: bool) -> Column:
    """The raw line gives `field` a JSON string value (from_json renders a number as the same text, and a
    string image's content as the image's text).

    `compact` is the spelling the stream sink writes ("field":"text" for a string, "field":{ for an
    object), a substring test on the UTF-8 bytes that settles most lines; only lines spelled otherwise reach
    the regex, which decodes the whole line. Neither test tells the line's own key from an item attribute
    that is itself called `field`: for the image, the compact object spelling answers first, so such an
    attribute inside an object image no longer makes it a string (the regex alone did); one in an old_image
    beside a string image would still hide the string."""
    return F.when(value.contains(compact), F.lit(compact_is_string)).otherwise(value.rlike(f'"{field}"\\s*:\\s*"'))


def parse_lines(lines: DataFrame) -> DataFrame:
    """Lines (value, source_file, ingest_date) -> one row per non-blank line.

    Valid rows have `reason` null and typed fields; rejected rows keep the raw line in `record`
    and a snake_case `reason` (first failing check in contract order).
    """
    return _with_reason(_fields(lines.filter(~_is_blank(F.col("value")))))


def _fields(lines: DataFrame) -> DataFrame:
    """The line's fields, each computed once (the reason and the output both read them)."""
    # The parse is a column of a projection of its own, read by the next: Spark does not merge an expression that
    # is not cheap into the projections that use it, whereas written inline it would be parsed again inside every
    # CASE WHEN branch that reads a field (1M lines, warm: parse_timestamp over an inline parse 33.5 s, its casts alone 11.5 s).
    values, value = F.col("values"), F.col("value")
    j = values[0]
    seq = j["sequence_number"]
    return lines.select("value", "source_file", "ingest_date", _line_values(value).alias("values")).select(
        "value",
        "source_file",
        "ingest_date",
        (values.isNull() | (F.size(values) != 1) | j.isNull()).alias("not_an_object"),
        j[UNCONVERTIBLE_FIELD].isNotNull().alias("unconvertible"),
        j["event_id"].alias("event_id"),
        j["event_name"].alias("event_name"),
        seq.alias("sequence_number"),
        # from_json renders any JSON value as text for a string field, so a JSON number 123 and the string
        # "123" look alike; the contract wants a string, which only the raw line can tell.
        _is_json_string_field(value, "sequence_number", F.concat(F.lit('"sequence_number":"'), seq, F.lit('"')), True).alias(
            "seq_is_string"
        ),
        j["approximate_creation_time"].alias("act_text"),
        parse_timestamp(j["approximate_creation_time"]).alias("approximate_creation_time"),
        j["keys"]["appointment_id"].alias("appointment_id"),
        j["new_image"].alias("new_image"),
        # A string where the image belongs ("new_image": "{...}") is not an image, even if its text parses.
        _is_json_string_field(value, "new_image", F.lit('"new_image":{'), False).alias("image_is_string"),
    )


def _with_reason(fields: DataFrame) -> DataFrame:
    """Rule 1's verdict over the fields, and the raw line of the rejected ones. Separate projections: in
    one, the reason's expression was evaluated twice per line (15% of the parse)."""
    def lacks(name: str) -> Column:
        return F.col(name).isNull() | (F.col(name) == "")

    seq = F.col("sequence_number")
    reason = (
        F.when(F.col("not_an_object"), F.lit("invalid_json"))
        # A record the stream sink could not convert, written with the marker so it is never lost (issue 13).
        .when(F.col("unconvertible"), F.lit(UNCONVERTIBLE_REASON))
        .when(lacks("event_id"), F.lit("missing_event_id"))
        .when(lacks("event_name"), F.lit("missing_event_name"))
        .when(lacks("sequence_number"), F.lit("missing_sequence_number"))
        .when(lacks("act_text"), F.lit("missing_approximate_creation_time"))
        .when(lacks("appointment_id"), F.lit("missing_appointment_id"))
        .when(~F.col("event_name").isin(*EVENT_NAMES), F.lit("unknown_event_name"))
        .when(~(F.col("seq_is_string") & seq.rlike(r"^[0-9]+$")), F.lit("bad_sequence_number"))
        .when(F.col("approximate_creation_time").isNull(), F.lit("bad_approximate_creation_time"))
    )
    columns = ("event_id", "event_name", "sequence_number", "approximate_creation_time", "appointment_id", "new_image",
               "image_is_string", "ingest_date", "source_file")
    return fields.select(*columns, reason.alias("reason"), "value").select(
        *columns, "reason", F.when(~is_valid(), F.col("value")).alias("record")
    )


def is_valid() -> Column:
    """A parsed line passed rule 1 (it has no reason)."""
    return F.col("reason").isNull()


def valid_changes(parsed: DataFrame) -> DataFrame:
    """The change records that passed rule 1."""
    return parsed.filter(is_valid()).drop("reason", "record")


def rejected_lines(parsed: DataFrame) -> DataFrame:
    """Rule-1 quarantine rows: reason, record (the raw line), source_file, appointment_id, ingest_date."""
    return parsed.filter(~is_valid()).select(
        "reason",
        "record",
        "source_file",
        # Nothing in a line that is not valid JSON is trusted, its key included.
        F.when((F.col("reason") != "invalid_json") & (F.col("appointment_id") != ""), F.col("appointment_id")).alias(
            "appointment_id"
        ),
        "ingest_date",
    )
