"""`advising class-archive`: the class archive that local Spark JVMs start from (run by `make setup`).

A local run starts a fresh JVM, which loads, verifies and links thousands of Spark, Hadoop and Parquet classes
before and during its first queries. JDK 17 can keep them ready-made in a dynamic class-data-sharing archive
(AppCDS): this command runs the pipeline on a small generated log (a full run, then a nightly run with the
quality gate) in a JVM that writes every class it loaded into the archive as it exits; from then on every
local session (jobs.session) maps the archive instead. A cluster's JVMs (EMR) are not started by us and do not
use it. An archive that no longer matches the JVM or the installed pyspark is ignored by the JVM, so a stale
one costs only the speed-up; `make setup` rebuilds it whenever the dependencies change.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from common.errors import UsageError

# Enough lines for every code path of a run (rejects of each rule, reschedules, removals), small enough to train
# in seconds.
_TRAINING_APPOINTMENTS = 300
_TRAINING_DAYS = 4


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "class-archive",
        help="build the JVM class archive that makes local Spark runs start faster (make setup runs it)",
        description="Run the pipeline on a small generated log in a JVM that archives the classes it loads "
        "(JDK 17 AppCDS), and keep the archive where every local Spark session finds it.",
    )
    parser.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from jobs.session import CLASS_ARCHIVE_DUMP_ENV, check_java, class_archive

    check_java()
    target = class_archive()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = f"{target}.{os.getpid()}.partial"
    with tempfile.TemporaryDirectory(prefix="advising-class-archive-") as work:
        done = subprocess.run(
            [sys.executable, "-m", "advising.class_archive", work],
            env={**os.environ, CLASS_ARCHIVE_DUMP_ENV: partial},
            capture_output=True,
            text=True,
        )
    if done.returncode != 0 or not os.path.isfile(partial):
        if os.path.exists(partial):
            os.unlink(partial)
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise UsageError(f"could not build the class archive ({last}); local runs work without it, only slower to start")
    os.replace(partial, target)  # a session starting meanwhile sees the old archive or the new one, never a part
    print(f"class archive: {target} ({os.path.getsize(target) / 2**20:.0f} MiB)")
    return 0


def _train(work: str) -> None:
    """The training run, in the JVM that writes the archive: a full run up to the day before the last, then the
    last day as a nightly run, so both code paths' classes are loaded."""
    import datetime as dt

    from advising.sample_data import generate
    from jobs.config import RunConfig
    from jobs.pipeline import run_pipeline
    from jobs.session import get_session, local_jvm

    log, tables = os.path.join(work, "log"), os.path.join(work, "tables")
    generate(log, appointments=_TRAINING_APPOINTMENTS, days=_TRAINING_DAYS, force=True)
    days = sorted(name.split("=", 1)[1] for name in os.listdir(os.path.join(log, "appointments")))
    spark = get_session("advising-class-archive")
    # The gate once (the nightly run) is enough to load the classes of its queries.
    run_pipeline(spark, RunConfig(input=log, output=tables, as_of=dt.date.fromisoformat(days[-2]), skip_quality=True),
                 log=lambda line: None)
    run_pipeline(spark, RunConfig(input=log, output=tables), log=lambda line: None)
    jvm = local_jvm(spark)
    spark.stop()
    # The JVM writes the archive as it exits, which it does when its standard input closes: wait for that, so the
    # archive is whole when this process ends.
    jvm.stdin.close()
    jvm.wait()


if __name__ == "__main__":
    _train(sys.argv[1])
