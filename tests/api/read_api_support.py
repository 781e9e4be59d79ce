"""Helpers of the read-API tests: serving tables written in the pipeline's layout (Hive-partitioned Parquet,
no Spark), a private redis-server that a test can stop and restart, and the API's test configuration."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from api.config import ApiConfig
from api.schema import ADVISOR_DAILY_LOAD, BOOKING_TRENDS_DAILY, Table
from tests.conftest import free_port, wait_until

def advisor_row(advisor_id: str, date: str, **values) -> dict:
    row = dict(
        date=dt.date.fromisoformat(date), advisor_id=advisor_id, department="Math", scheduled_count=4, completed_count=2,
        no_show_count=1, cancelled_count=1, booked_minutes=120, distinct_students=3, capacity_minutes=240,
        utilization=0.5, no_show_rate=1 / 3,
    )
    row.update(values)
    return row


def trend_row(department: str, date: str, **values) -> dict:
    row = dict(
        date=dt.date.fromisoformat(date), department=department, bookings_created=5, cancelled_count=1,
        cancellation_rate=0.2, median_lead_time_hours=26.5, p90_lead_time_hours=70.25, bookings_7d_avg=5 / 7,
    )
    row.update(values)
    return row


def _arrow(table: Table, rows: List[dict]) -> pa.Table:
    schema = pa.schema([pa.field(c.name, getattr(pa, c.arrow_type)(), c.nullable) for c in table.columns])
    return pa.Table.from_pylist(rows, schema=schema)


def write_table(root: Path, table: Table, rows: List[dict]) -> None:
    """One table as Spark writes it: date=YYYY-MM-DD folders without the date column, _SUCCESS and .crc
    files beside; an empty table is a single Parquet file at the table root holding every column."""
    path = root / table.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / "_SUCCESS").write_bytes(b"")
    data = _arrow(table, rows)
    if not rows:
        pq.write_table(data, path / "part-00000.parquet")
        return
    for date in sorted({r["date"] for r in rows}):
        folder = path / f"date={date.isoformat()}"
        folder.mkdir()
        part = _arrow(table, [r for r in rows if r["date"] == date]).drop_columns(["date"])
        pq.write_table(part, folder / "part-00000.parquet")
        (folder / ".part-00000.parquet.crc").write_bytes(b"")


def write_tables(root: Path, advisors: List[dict], trends: List[dict]) -> Path:
    write_table(root, ADVISOR_DAILY_LOAD, advisors)
    write_table(root, BOOKING_TRENDS_DAILY, trends)
    return root


@dataclass
class RedisProcess:
    """A private redis-server that a test may stop (mid-test) and start again on the same port; with a
    `password`, it requires AUTH (as ElastiCache with an AUTH token does)."""

    port: int
    password: Optional[str] = None
    proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)", pytrace=False)
        auth = ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
             *auth],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = self.client()
        wait_until(client.ping, f"private redis-server did not start on port {self.port}", not_yet=(redis.ConnectionError,),
                   alive=lambda: self.proc.poll() is None, seconds=10)
        client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


class FakeClock:
    """A monotonic clock that moves only when a test advances it (create_app's `clock`)."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_now_ms(client: redis.Redis) -> int:
    """Redis' own clock in whole milliseconds, the clock its expiry times (PEXPIRETIME) are on."""
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


@dataclass
class RunningApi:
    url: str
    app: object
    server: object
    thread: threading.Thread

    @property
    def metrics(self):
        return self.app.state.metrics


def api_config(db_url: str, redis_url: Optional[str], key_prefix: str, **overrides) -> ApiConfig:
    base = ApiConfig(database_url=db_url, redis_url=redis_url, key_prefix=key_prefix, cache_jitter=0.0,
                     redis_timeout=0.2, redis_retry_after=0.2, port=free_port(), cache_enabled=redis_url is not None)
    return replace(base, **overrides)


def wait_for_health(port: int, proc: subprocess.Popen) -> dict:
    """GET /health of an `advising serve` process once it answers."""
    return wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json(), "advising serve did not start",
                      not_yet=(httpx.TransportError,), alive=lambda: proc.poll() is None)
