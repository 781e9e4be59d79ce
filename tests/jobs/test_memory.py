"""Memory: the driver is sized from the machine or the flag, and running out of it ends in one line.

The out-of-memory test starts its own Spark JVM (the heap is fixed when a JVM starts, so the shared
test session cannot be given a small one): `python -m jobs.main` with `--driver-memory 600m` over a
small gzip file holding one 300 MB line, which no 600 MB heap can read.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UsageError
from jobs.config import RunConfig
from jobs.session import MIN_DRIVER_MEMORY_MB, local_driver_memory, shuffle_settings
from tests.conftest import spark_child_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
GIB = 1024**3


def test_local_driver_memory_is_half_the_machine_with_a_floor():
    assert local_driver_memory(24 * GIB) == "12288m"
    assert local_driver_memory(1 * GIB) == f"{MIN_DRIVER_MEMORY_MB}m"


def test_shuffle_partitions_follow_the_input_size():
    mb = 1024 * 1024
    assert shuffle_settings(0, 2)["spark.sql.shuffle.partitions"] == "2"
    assert shuffle_settings(375 * mb, 2)["spark.sql.shuffle.partitions"] == "24"
    assert shuffle_settings(1100 * mb, 2)["spark.sql.shuffle.partitions"] == "69"
    assert shuffle_settings(1100 * mb, 200)["spark.sql.shuffle.partitions"] == "200"  # a cluster's cores
    settings = shuffle_settings(3700 * mb, 2)
    assert settings["spark.sql.adaptive.coalescePartitions.initialPartitionNum"] == settings["spark.sql.shuffle.partitions"]


def test_driver_memory_comes_from_the_flag_then_the_environment():
    args = ["--input", "in", "--output", "out"]
    assert RunConfig.from_args(args, env={}).driver_memory is None
    assert RunConfig.from_args(args, env={"ADVISING_DRIVER_MEMORY": "6g"}).driver_memory == "6g"
    config = RunConfig.from_args(args + ["--driver-memory", "8g"], env={"ADVISING_DRIVER_MEMORY": "6g"})
    assert config.driver_memory == "8g"
    assert RunConfig.from_args(config.to_args(), env={}) == config
    with pytest.raises(UsageError, match="--driver-memory must be a JVM memory size"):
        RunConfig.from_args(args + ["--driver-memory", "lots"], env={})


@pytest.mark.timeout(900)
def test_out_of_memory_ends_in_one_line_and_publishes_nothing(tmp_path):
    source, output = tmp_path / "input", tmp_path / "tables"
    folder = source / "appointments" / "ingest_date=2026-09-01"
    folder.mkdir(parents=True)
    ordinary = {"event_id": "e1", "event_name": "INSERT", "sequence_number": "1",
                "approximate_creation_time": "2026-09-01T10:00:00Z", "keys": {"appointment_id": "a1"}, "new_image": None}
    with gzip.open(folder / "changes-00000.jsonl.gz", "wt", compresslevel=1) as out:
        out.write(json.dumps(ordinary) + "\n")
        out.write('{"event_id": "e2", "notes": "')
        chunk = "x" * (1024 * 1024)
        for _ in range(300):
            out.write(chunk)
        out.write('"}\n')
    env = spark_child_env()

    done = subprocess.run(
        [sys.executable, "-m", "jobs.main", "--input", str(source), "--output", str(output), "--driver-memory", "600m"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840,
    )

    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith("error: Spark ran out of memory (java.lang.OutOfMemoryError: Java heap space), ")
    assert "nothing published; raise the driver memory with --driver-memory or ADVISING_DRIVER_MEMORY" in errors[0]
    assert "Traceback" not in done.stderr
    log = Path(errors[0].rsplit("full trace: ", 1)[1])
    trace = log.read_text()
    assert "java.lang.OutOfMemoryError" in trace and "\tat org.apache.spark." in trace.replace("    at ", "\tat ")
    log.unlink()
    published = [n for n in (os.listdir(output) if output.exists() else []) if not n.startswith(("_", "."))]
    assert published == []
