"""The read API's PostgreSQL schema: the two served tables and the data-version history.

`advising publish-db` creates it (idempotently) and fills it; the API only reads it. Column names and
order follow the data contract (jobs/contract.py); each table's primary key is the index the API's
queries use: (advisor_id, date) and (department, date).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import psycopg

SCHEMA = "advising"


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # PostgreSQL type
    arrow_type: str  # pyarrow type name the Parquet column is cast to
    nullable: bool


@dataclass(frozen=True)
class Table:
    name: str
    columns: Tuple[Column, ...]
    key: Tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{SCHEMA}.{self.name}"

    @property
    def column_names(self) -> Tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self) -> str:
        cols = ",\n  ".join(f"{c.name} {c.pg_type}{'' if c.nullable else ' NOT NULL'}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n  {cols},\n  PRIMARY KEY ({', '.join(self.key)})\n)"


def _col(name: str, kind: str, nullable: bool = False) -> Column:
    pg, arrow = {"string": ("text", "string"), "long": ("bigint", "int64"), "double": ("double precision", "float64"), "date": ("date", "date32")}[kind]
    return Column(name, pg, arrow, nullable)


ADVISOR_DAILY_LOAD = Table(
    "advisor_daily_load",
    (
        _col("date", "date"),
        _col("advisor_id", "string"),
        _col("department", "string", nullable=True),
        _col("scheduled_count", "long"),
        _col("completed_count", "long"),
        _col("no_show_count", "long"),
        _col("cancelled_count", "long"),
        _col("booked_minutes", "long"),
        _col("distinct_students", "long"),
        _col("capacity_minutes", "long", nullable=True),
        _col("utilization", "double", nullable=True),
        _col("no_show_rate", "double", nullable=True),
    ),
    key=("advisor_id", "date"),
)

BOOKING_TRENDS_DAILY = Table(
    "booking_trends_daily",
    (
        _col("date", "date"),
        _col("department", "string"),
        _col("bookings_created", "long"),
        _col("cancelled_count", "long"),
        _col("cancellation_rate", "double", nullable=True),
        _col("median_lead_time_hours", "double", nullable=True),
        _col("p90_lead_time_hours", "double", nullable=True),
        _col("bookings_7d_avg", "double"),
    ),
    key=("department", "date"),
)

SERVED_TABLES = (ADVISOR_DAILY_LOAD, BOOKING_TRENDS_DAILY)

# One row per publish that changed something; the current version is the greatest.
DATA_VERSION_DDL = f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.data_version (
  version bigint PRIMARY KEY,
  published_at timestamptz NOT NULL DEFAULT now(),
  changed_rows bigint NOT NULL,
  advisor_daily_load_rows bigint NOT NULL,
  booking_trends_daily_rows bigint NOT NULL
)"""

CURRENT_VERSION_SQL = f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.data_version"


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the schema and tables where absent (inside the caller's transaction)."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table in SERVED_TABLES:
        conn.execute(table.ddl())
    conn.execute(DATA_VERSION_DDL)
