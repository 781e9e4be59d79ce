"""`advising publish-db`: Parquet -> PostgreSQL in one transaction, whole-content replacement, versioning."""
from __future__ import annotations

import psycopg
import pytest

from advising.cli import main
from api.config import PublishConfig
from api.publish import publish
from api.schema import ADVISOR_DAILY_LOAD, BOOKING_TRENDS_DAILY, Table
from jobs import contract
from common.errors import UsageError

from read_api_support import advisor_row, trend_row, write_tables

ADVISORS = [
    advisor_row("a1", "2024-03-04"),
    advisor_row("a1", "2024-03-05", scheduled_count=7, booked_minutes=300, utilization=1.25, no_show_rate=None),
    advisor_row("a2", "2024-03-04", department=None, capacity_minutes=None, utilization=None),
]
TRENDS = [
    trend_row("Math", "2024-03-01"),
    trend_row("Math", "2024-03-02", bookings_created=0, cancelled_count=0, cancellation_rate=None,
              median_lead_time_hours=None, p90_lead_time_hours=None),
    trend_row("Physics", "2024-03-01", bookings_7d_avg=0.1 + 0.2),
]


def content(url: str, table: Table) -> list:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(f"SELECT * FROM {table.qualified} ORDER BY {', '.join(table.key)}").fetchall()


def versions(url: str) -> list:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM advising.data_version ORDER BY version")]


def by_key(rows, table: Table) -> list:
    return sorted(rows, key=lambda r: tuple(r[k] for k in table.key))


def test_publish_loads_both_tables_exactly(publish_tables, db_url):
    result = publish_tables(ADVISORS, TRENDS)

    assert result.changed and result.rows == {"advisor_daily_load": 3, "booking_trends_daily": 3}
    assert content(db_url, ADVISOR_DAILY_LOAD) == by_key(ADVISORS, ADVISOR_DAILY_LOAD)
    assert content(db_url, BOOKING_TRENDS_DAILY) == by_key(TRENDS, BOOKING_TRENDS_DAILY)
    assert versions(db_url) == [result.version]
    with psycopg.connect(db_url) as conn:
        indexes = {r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'advising'")}
    assert any("advisor_daily_load USING btree (advisor_id, date)" in i for i in indexes), indexes
    assert any("booking_trends_daily USING btree (department, date)" in i for i in indexes), indexes


def test_republishing_the_same_data_keeps_the_version(publish_tables, db_url):
    first = publish_tables(ADVISORS, TRENDS)
    again = publish_tables(ADVISORS, TRENDS)

    assert not again.changed and again.changed_rows == 0 and again.version == first.version
    assert versions(db_url) == [first.version]


def test_a_new_publish_replaces_the_whole_content_and_bumps_the_version(publish_tables, db_url):
    first = publish_tables(ADVISORS, TRENDS)
    advisors = [ADVISORS[0], advisor_row("a1", "2024-03-05", scheduled_count=8), advisor_row("a3", "2024-03-06")]
    trends = [TRENDS[2]]

    second = publish_tables(advisors, trends)

    assert second.changed and second.version > first.version
    # a2 and two Math days disappeared, a1's second day changed, a3 appeared
    assert second.changed_rows == 1 + 1 + 1 + 2
    assert content(db_url, ADVISOR_DAILY_LOAD) == by_key(advisors, ADVISOR_DAILY_LOAD)
    assert content(db_url, BOOKING_TRENDS_DAILY) == trends
    assert versions(db_url) == [first.version, second.version]


def test_empty_tables_written_as_one_root_file_publish_as_empty(publish_tables, db_url):
    publish_tables(ADVISORS, TRENDS)
    result = publish_tables([], [])

    assert result.changed and result.rows == {"advisor_daily_load": 0, "booking_trends_daily": 0}
    assert content(db_url, ADVISOR_DAILY_LOAD) == [] and content(db_url, BOOKING_TRENDS_DAILY) == []


def test_a_failure_inside_the_transaction_leaves_the_previous_publish_intact(publish_tables, db_url):
    first = publish_tables(ADVISORS, TRENDS)
    # advisor_daily_load is replaced first; PostgreSQL then refuses the NUL byte in a trends row.
    with pytest.raises(psycopg.DataError):
        publish_tables([advisor_row("zz", "2024-05-01")], [trend_row("Ma\x00th", "2024-05-01")])

    assert content(db_url, ADVISOR_DAILY_LOAD) == by_key(ADVISORS, ADVISOR_DAILY_LOAD)
    assert versions(db_url) == [first.version]


def test_duplicate_keys_are_refused_before_touching_the_database(tmp_path, db_url):
    root = write_tables(tmp_path, [advisor_row("a1", "2024-03-04"), advisor_row("a1", "2024-03-04")], TRENDS)
    with pytest.raises(UsageError, match="duplicate key"):
        publish(PublishConfig(output=str(root), database_url=db_url))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('advising.data_version')").fetchone()[0] is None


def test_cli_publishes_and_reports_in_one_line(tmp_path, db_url, capsys):
    root = write_tables(tmp_path, ADVISORS, TRENDS)
    assert main(["publish-db", "--output", str(root), "--database-url", db_url]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("published advisor_daily_load=3, booking_trends_daily=3: version ") and "\n" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--output", "{tmp}/nowhere"], "is not a directory"),
        (["--output", "{tmp}"], "table folder"),  # the root exists, the table folders do not
        (["--output", "{tmp}", "--database-url", "mysql://db"], "postgresql:// URL"),
    ],
)
def test_cli_misuse_fails_with_one_line(tmp_path, db_url, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--database-url" not in argv:
        argv += ["--database-url", db_url]
    assert main(["publish-db", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("advising publish-db: error:")


def test_columns_follow_the_data_contract():
    for table, schema in ((ADVISOR_DAILY_LOAD, contract.ADVISOR_DAILY_LOAD_SCHEMA), (BOOKING_TRENDS_DAILY, contract.BOOKING_TRENDS_DAILY_SCHEMA)):
        kinds = {"StringType": "string", "LongType": "int64", "DoubleType": "float64", "DateType": "date32"}
        expected = {f.name: (kinds[type(f.dataType).__name__], f.nullable) for f in schema.fields}
        assert {c.name: (c.arrow_type, c.nullable) for c in table.columns} == expected
        assert table.columns[0].name == "date"  # date first in the API's rows; the contract lists it last
