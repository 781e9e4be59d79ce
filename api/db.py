"""The read API's PostgreSQL side: a connection pool and the queries behind each endpoint.

Each data query is one statement, so the rows, the "is this id known at all" answer and the data version
it returns all come from one snapshot: the cache stores a result under exactly the version it belongs to.
Every query is counted (advising_db_queries_total) so tests and the benchmark can see what reached the DB.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, List, NamedTuple, Optional

import psycopg
import psycopg_pool

from api.metrics import ApiMetrics
from api.schema import ADVISOR_DAILY_LOAD, BOOKING_TRENDS_DAILY, CURRENT_VERSION_SQL, Table

# Failures that mean "the database is unavailable right now" (answered with 503), as opposed to bugs.
UNAVAILABLE = (psycopg.OperationalError, psycopg_pool.PoolTimeout)


class Rows(NamedTuple):
    version: int
    known: bool  # the id has rows on some date (False -> 404)
    days: List[dict]


def _range_query(table: Table, id_column: str) -> str:
    return (
        f"SELECT ({CURRENT_VERSION_SQL}), "
        f"EXISTS (SELECT 1 FROM {table.qualified} WHERE {id_column} = %(id)s), "
        f"(SELECT coalesce(json_agg(r ORDER BY r.date), '[]'::json) FROM ("
        f"SELECT {', '.join(table.column_names)} FROM {table.qualified} "
        f"WHERE {id_column} = %(id)s AND date BETWEEN %(start)s AND %(end)s) r)"
    )


_ADVISOR_LOAD_SQL = _range_query(ADVISOR_DAILY_LOAD, "advisor_id")
_DEPARTMENT_TRENDS_SQL = _range_query(BOOKING_TRENDS_DAILY, "department")


class Database:
    def __init__(self, url: str, metrics: ApiMetrics, *, pool_size: int = 10, statement_timeout_ms: int = 5000):
        self._metrics = metrics
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            # A slow query must fail (503) rather than pile up requests behind it.
            kwargs={"autocommit": True, "options": f"-c statement_timeout={statement_timeout_ms}"},
            timeout=5.0,
            open=False,
            name="advising-api",
        )

    def open(self) -> None:
        # Not waiting: the process starts even while the database is briefly unreachable; /health says so.
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close()

    def _one(self, label: str, sql: str, params: Optional[dict] = None) -> Any:
        self._metrics.db_queries.inc(label)
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchone()
        except UNAVAILABLE:
            self._metrics.db_errors.inc(label)
            raise

    def current_version(self, label: str = "version") -> int:
        """The latest published data version; 0 before the first publish."""
        return int(self._one(label, CURRENT_VERSION_SQL)[0])

    def advisor_load(self, advisor_id: str, start: dt.date, end: dt.date) -> Rows:
        return Rows(*self._one("advisor_load", _ADVISOR_LOAD_SQL, {"id": advisor_id, "start": start, "end": end}))

    def department_trends(self, department: str, start: dt.date, end: dt.date) -> Rows:
        return Rows(*self._one("department_trends", _DEPARTMENT_TRENDS_SQL, {"id": department, "start": start, "end": end}))
