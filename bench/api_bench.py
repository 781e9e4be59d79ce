"""Load benchmark of the read API: latency and database load with and without the Redis cache.

Builds a scratch database of generated rows (published through `advising publish-db`'s code path), starts
`advising serve` as a subprocess on loopback (once with the cache, once with --no-cache), and drives it
with client threads over keep-alive HTTP on a skewed key mix: Zipf(s) over a fixed set of keys (advisor
weeks and department months). Each mode gets a short warm-up, then a bounded measuring window. Reports
requests/s, p50/p99 latency, PostgreSQL queries/s (from the API's own counter on /metrics) and the hit
ratio, plus the machine. Everything it creates (database, Redis keys, temp files) is removed at the end.

    .venv/bin/python bench/api_bench.py [--seconds 20] [--threads 8] [--keys 2000] [--zipf 1.1]
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Tuple
from urllib.parse import urlencode, urlparse, urlunparse

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.dataset as pads
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.config import PublishConfig  # noqa: E402
from api.publish import publish  # noqa: E402
from api.schema import ADVISOR_DAILY_LOAD, BOOKING_TRENDS_DAILY, Table  # noqa: E402

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path

START = dt.date(2024, 1, 1)



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_dataset(root: Path, table: Table, columns: Dict[str, list]) -> None:
    schema = pa.schema([pa.field(c.name, getattr(pa, c.arrow_type)(), c.nullable) for c in table.columns])
    data = pa.Table.from_pydict(columns, schema=schema)
    pads.write_dataset(data, root / table.name, format="parquet",
                       partitioning=pads.partitioning(pa.schema([("date", pa.date32())]), flavor="hive"))


def generate(root: Path, advisors: int, days: int, departments: int, rng: np.random.Generator) -> None:
    n = advisors * days
    dates = [START + dt.timedelta(days=d) for d in range(days)] * advisors
    scheduled = rng.integers(0, 12, n)
    booked = scheduled * 30
    capacity = np.full(n, 360)
    write_dataset(root, ADVISOR_DAILY_LOAD, {
        "date": dates, "advisor_id": [f"adv{a:05d}" for a in range(advisors) for _ in range(days)],
        "department": [f"dept{a % departments:02d}" for a in range(advisors) for _ in range(days)],
        "scheduled_count": scheduled, "completed_count": scheduled // 2, "no_show_count": scheduled // 6,
        "cancelled_count": rng.integers(0, 3, n), "booked_minutes": booked, "distinct_students": scheduled,
        "capacity_minutes": capacity, "utilization": booked / capacity, "no_show_rate": rng.random(n),
    })
    m = departments * 365
    bookings = rng.integers(0, 60, m)
    write_dataset(root, BOOKING_TRENDS_DAILY, {
        "date": [START + dt.timedelta(days=d) for d in range(365)] * departments,
        "department": [f"dept{p:02d}" for p in range(departments) for _ in range(365)],
        "bookings_created": bookings, "cancelled_count": bookings // 10, "cancellation_rate": rng.random(m),
        "median_lead_time_hours": rng.random(m) * 48, "p90_lead_time_hours": rng.random(m) * 200,
        "bookings_7d_avg": bookings / 7,
    })


def key_paths(count: int, advisors: int, days: int, departments: int, rng: np.random.Generator) -> List[str]:
    """`count` distinct request paths, in popularity order: 90% advisor weeks, 10% department months."""
    paths = set()
    while len(paths) < count:
        if rng.random() < 0.9:
            start = START + dt.timedelta(days=int(rng.integers(0, days - 7)))
            query = urlencode({"from": start.isoformat(), "to": (start + dt.timedelta(days=6)).isoformat()})
            paths.add(f"/advisors/adv{int(rng.integers(0, advisors)):05d}/load?{query}")
        else:
            month = int(rng.integers(1, 13))
            first = dt.date(2024, month, 1)
            last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            paths.add(f"/departments/dept{int(rng.integers(0, departments)):02d}/trends?from={first}&to={last}")
    ordered = sorted(paths)
    rng.shuffle(ordered)
    return ordered


def metrics(port: int) -> Dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    totals: Dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            base = name.split("{")[0]
            totals[base] = totals.get(base, 0.0) + float(value)
    return totals


def drive(port: int, paths: List[str], probabilities: np.ndarray, threads: int, seconds: float, seed: int) -> Tuple[List[float], int]:
    """Client threads over keep-alive connections until the deadline; returns latencies (s) and errors."""
    latencies: List[List[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    deadline = time.perf_counter() + seconds

    def client(i: int) -> None:
        rng = np.random.default_rng(seed + i)
        picks = rng.choice(len(paths), size=200_000, p=probabilities)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for n, pick in enumerate(picks):
            started = time.perf_counter()
            if started >= deadline:
                break
            conn.request("GET", paths[pick])
            response = conn.getresponse()
            response.read()
            latencies[i].append(time.perf_counter() - started)
            if response.status != 200:
                errors[i] += 1
        conn.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [x for per in latencies for x in per], sum(errors)


def run_mode(cached: bool, args, db_url: str, prefix: str, paths: List[str], probabilities: np.ndarray) -> Dict[str, float]:
    port = free_port()
    cmd = [sys.executable, "-m", "advising.cli", "serve", "--port", str(port), "--database-url", db_url, "--key-prefix", prefix]
    cmd += ["--redis-url", args.redis_url] if cached else ["--no-cache"]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                metrics(port)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the API did not start: {server.stderr.read() if server.poll() is not None else 'timeout'}")
                time.sleep(0.2)
        drive(port, paths, probabilities, args.threads, args.warmup, args.seed)
        before = metrics(port)
        latencies, errors = drive(port, paths, probabilities, args.threads, args.seconds, args.seed + 1000)
        after = metrics(port)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    lookups = delta.get("advising_cache_hits_total", 0) + delta.get("advising_cache_misses_total", 0)
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies), "errors": errors, "rps": len(latencies) / args.seconds,
        "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
        "db_qps": delta.get("advising_db_queries_total", 0) / args.seconds,
        "hit_ratio": delta.get("advising_cache_hits_total", 0) / lookups if lookups else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per mode (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured warm-up per mode (default 3)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--keys", type=int, default=2000, help="distinct request keys (default 2000)")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent s of the key popularity (default 1.1)")
    parser.add_argument("--advisors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--departments", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    for url in (args.database_url, args.redis_url):
        if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error(f"loopback only: {url}")

    rng = np.random.default_rng(args.seed)
    name = f"advising_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"advbench_{uuid.uuid4().hex[:10]}"
    db_url = urlunparse(urlparse(args.database_url)._replace(path=f"/{name}"))
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        started = time.perf_counter()
        generate(tmp, args.advisors, args.days, args.departments, rng)
        result = publish(PublishConfig(output=str(tmp), database_url=db_url, redis_url=args.redis_url, key_prefix=prefix))
        print(f"machine: {describe()}")
        with psycopg.connect(db_url) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
        print(f"services: PostgreSQL {pg}, Redis {redis.Redis.from_url(args.redis_url).info('server')['redis_version']} (loopback)")
        print(f"data: {result.rows} published in {time.perf_counter() - started:.1f}s (generate + publish-db)")
        ranks = np.arange(1, args.keys + 1, dtype=float)
        probabilities = ranks ** -args.zipf / np.sum(ranks ** -args.zipf)
        paths = key_paths(args.keys, args.advisors, args.days, args.departments, rng)
        print(f"load: {args.keys} keys, Zipf s={args.zipf} (top key {probabilities[0]:.1%} of requests, top 100 "
              f"{probabilities[:100].sum():.1%}), {args.threads} client threads, {args.warmup:g}s warm-up + {args.seconds:g}s per mode")
        rows = [("cache", run_mode(True, args, db_url, prefix, paths, probabilities)),
                ("no cache", run_mode(False, args, db_url, prefix, paths, probabilities))]
        print(f"{'mode':<9} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'DB q/s':>8} {'hit ratio':>9} {'errors':>6}")
        for mode, r in rows:
            hit_ratio = "-" if np.isnan(r["hit_ratio"]) else f"{r['hit_ratio']:.1%}"
            print(f"{mode:<9} {r['requests']:>9} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['db_qps']:>8.1f} "
                  f"{hit_ratio:>9} {r['errors']:>6}")
        return 1 if any(r["errors"] for _mode, r in rows) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


if __name__ == "__main__":
    sys.exit(main())
