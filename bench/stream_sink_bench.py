"""Benchmark of the DynamoDB stream sink: warm handler time per batch, and cold start.

Measures:
  handler   - functions.stream_sink.handler.handler on a --records batch (NEW_AND_OLD_IMAGES MODIFY
              records of full appointment items, spread over two UTC dates -> two S3 objects) with
              S3 = a moto server on loopback, started here; --runs timed runs after one warm-up
              (the warm-up also creates the S3 client, as the first invocation of a container does)
  convert   - the same batch through the pure part only (stream_line + group + gzip), no S3
  import    - `import functions.stream_sink.handler` in a fresh interpreter (the cold-start import cost)
  first     - a fresh interpreter's import + first invocation (S3 client creation + one 1-record batch)
Bounded: a few seconds in all at the defaults. Loopback only.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from boto3.dynamodb.types import TypeSerializer  # noqa: E402

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/appointments/stream/2026-01-05T08:00:00.000"
BUCKET = "bench-raw"



def make_batch(count: int) -> dict:
    serializer = TypeSerializer()
    start = 1767657000  # 2026-01-05T23:50:00Z: the batch crosses midnight, as a real one can
    records = []
    for n in range(count):
        item = {
            "appointment_id": f"appt-{n:06d}",
            "student_id": f"stu-{n % 5000:05d}",
            "advisor_id": f"adv-{n % 120:03d}",
            "department": ("Physics", "History", "Biology", "Economics")[n % 4],
            "start_time": "2026-01-12T15:30:00Z",
            "duration_minutes": 30,
            "status": "BOOKED",
            "created_at": "2026-01-05T23:50:00Z",
            "updated_at": "2026-01-05T23:55:00.125Z",
            "channel": ("web", "mobile", "walk_in")[n % 3],
        }
        old = dict(item, status="CANCELLED")
        records.append(
            {
                "eventID": f"{n:032x}",
                "eventName": "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": STREAM_ARN,
                "dynamodb": {
                    "ApproximateCreationDateTime": start + n * 1.2,
                    "Keys": {"appointment_id": {"S": item["appointment_id"]}},
                    "NewImage": {k: serializer.serialize(v) for k, v in item.items()},
                    "OldImage": {k: serializer.serialize(v) for k, v in old.items()},
                    "SequenceNumber": str(400000000000000000000 + n * 100),
                    "SizeBytes": 600,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        )
    return {"Records": records}


def timed(call, runs: int) -> list:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def summary(times: list) -> str:
    ms = sorted(t * 1000 for t in times)
    return f"min {ms[0]:7.1f} ms  median {statistics.median(ms):7.1f} ms  max {ms[-1]:7.1f} ms  (n={len(ms)})"


def fresh_interpreter(code: str, env: dict, runs: int) -> list:
    times = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000, help="records per batch (default 1000)")
    parser.add_argument("--runs", type=int, default=20, help="timed handler runs (default 20)")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh interpreters for the cold figures (default 5)")
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "RAW_BUCKET": BUCKET,
        "RAW_PREFIX": "raw/",
    }
    os.environ.update(env)
    try:
        import boto3

        from functions.stream_sink import handler as sink
        from functions.stream_sink import records

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        batch = make_batch(args.records)
        def convert():
            lines = [records.convert(record) for record in batch["Records"]]
            return [records.encode_lines(group.lines) for group in sink.group_by_date(lines, "1970-01-01")]

        bodies = convert()
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's per-batch log lines
            response = sink.handler(batch, None)  # warm-up: creates the S3 client
            assert response == {"batchItemFailures": []}, response
            handler_times = timed(lambda: sink.handler(batch, None), args.runs)
        convert_times = timed(convert, args.runs)

        child_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        import_code = "import time; t = time.perf_counter(); import functions.stream_sink.handler; print(time.perf_counter() - t)"
        first_code = (
            "import io, contextlib, time, json; t = time.perf_counter()\n"
            "from functions.stream_sink.handler import handler\n"
            f"event = json.loads({json.dumps(make_batch(1))!r})\n"
            "with contextlib.redirect_stdout(io.StringIO()): handler(event, None)\n"
            "print(time.perf_counter() - t)"
        )
        import_times = fresh_interpreter(import_code, child_env, args.cold_runs)
        first_times = fresh_interpreter(first_code, child_env, args.cold_runs)
    finally:
        server.stop()

    print(f"machine : {describe()}")
    print(f"batch   : {args.records} MODIFY records (new + old image), {len(bodies)} objects, "
          f"{sum(len(b) for b in bodies)} gzip bytes; S3 = moto server on loopback")
    print(f"handler : {summary(handler_times)}  -> {statistics.median(handler_times) / args.records * 1e6:.0f} us/record")
    print(f"convert : {summary(convert_times)}  (pure part, no S3)")
    print(f"import  : {summary(import_times)}  (cold import of functions.stream_sink.handler, fresh interpreter)")
    print(f"first   : {summary(first_times)}  (import + S3 client + first 1-record batch, fresh interpreter)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
