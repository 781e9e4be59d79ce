"""Benchmark: the quality gate's share of a whole pipeline run.

Generates a sample change log (advising.sample_data) or reuses --input, runs the pipeline once (full
rebuild, Spark local mode) and reads the gate's cost from the run summary's "quality" stage (the wait,
after the last table, for the frames still being checked, the report and the data docs: the gate checks
each frame beside the stage after the one that made it) and from quality.json (the gate's whole span).
With --compare it first runs the same input with --skip-quality (that run also warms the JVM up) and
reports the wall-time difference; the share printed is always the gated run's own "quality" stage.

    .venv/bin/python bench/quality_bench.py --appointments 100000
    .venv/bin/python bench/quality_bench.py --appointments 1000000 --compare
    .venv/bin/python bench/quality_bench.py --input data/sample

Everything is local (files under --work, Spark local mode, loopback only). Bounded: one generation
and one or two pipeline runs; about 1 minute at 100k appointments on two idle cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_once(spark, source: str, output: str, skip_quality: bool):
    from jobs.config import RunConfig
    from jobs.pipeline import run_pipeline

    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    summary = run_pipeline(spark, RunConfig(input=source, output=output, full=True, skip_quality=skip_quality), log=lambda _: None)
    return summary, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=100_000, help="sample size to generate (default 100000)")
    parser.add_argument("--days", type=int, default=365, help="days the generated start times spread over (default 365)")
    parser.add_argument("--input", default=None, help="reuse this input root instead of generating one")
    parser.add_argument("--work", default=None, help="folder for the generated input and the tables (default: a temp dir, removed)")
    parser.add_argument("--compare", action="store_true", help="also run with --skip-quality and compare wall times")
    args = parser.parse_args(argv)
    if args.appointments < 1:
        parser.error("--appointments must be at least 1")

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from importlib.metadata import version  # not importing GX here: jobs.quality sets it up offline

    print(f"machine: {describe()}")
    print(f"versions: Spark {version('pyspark')}, Great Expectations {version('great-expectations')}")
    work = Path(args.work or tempfile.mkdtemp(prefix="quality-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        source = args.input
        if source is None:
            from advising.sample_data import generate

            source = str(work / "input")
            if (work / "input" / "appointments").is_dir():
                print(f"input: reusing {source}")
            else:
                sample = generate(source, appointments=args.appointments, days=args.days, seed=1)
                print(f"input: {sample.line()}")
        else:
            print(f"input: {source}")

        from jobs.config import RunConfig
        from jobs.pipeline import is_short_run
        from jobs.session import get_session

        output = str(work / "tables")
        # The JIT `advising run` would choose for this run (jobs.pipeline.execute): C1 only for a small log.
        spark = get_session("quality-bench", short_run=is_short_run(RunConfig(input=source, output=output, full=True)))
        if args.compare:
            # First, so that the measured run below does not also carry the JVM's warm-up.
            _, skipped = run_once(spark, source, output, skip_quality=True)
        summary, wall = run_once(spark, source, output, skip_quality=False)
        report = json.loads((Path(output) / "_runs" / summary.run_id / "quality.json").read_text())
        stage = summary.stage_seconds.get("quality", 0.0)
        print(f"rows: {', '.join(f'{k} {v}' for k, v in summary.rows.items())}")
        print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in summary.stage_seconds.items()))
        print(f"gate: {report['summary'][:200]}")
        print(
            f"quality stage {stage:.1f} s (the gate's whole span {report['seconds']:.1f} s) of a {wall:.1f} s run: "
            f"{stage / wall:.1%} of the run (the whole span {report['seconds'] / wall:.1%})"
        )
        if args.compare:
            print(f"with --skip-quality (run first, cold JVM): {skipped:.1f} s; difference {wall - skipped:+.1f} s")
        print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
