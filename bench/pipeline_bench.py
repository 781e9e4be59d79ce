"""Pipeline benchmark: generate N appointments, run the whole pipeline (Spark local mode), print events/s and
seconds per stage, with the machine it ran on.

    .venv/bin/python bench/pipeline_bench.py --appointments 100000
    .venv/bin/python bench/pipeline_bench.py --appointments 1000000 --work /tmp/advising-bench

The generated log is kept under --work (keyed by size and seed) so repeated runs measure only the pipeline.
Each run publishes into a fresh output folder: a full run over the whole log.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--work", default="/tmp/advising-bench")
    parser.add_argument("--timezone", default="America/Chicago")
    parser.add_argument("--skip-quality", action="store_true", help="time the run without the quality gate")
    args = parser.parse_args(argv)

    from advising.sample_data import generate
    from jobs.config import RunConfig
    from jobs.pipeline import run_pipeline
    from jobs.session import get_session

    print(f"machine: {describe()}")
    work = Path(args.work)
    log_dir = work / f"log-{args.appointments}-{args.seed}-{args.days}"
    if not (log_dir / "appointments").is_dir():
        summary = generate(log_dir, appointments=args.appointments, seed=args.seed, days=args.days, force=True)
        print(f"generated: {summary.line()}")
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)

    started = time.monotonic()
    spark = get_session("advising-bench")
    print(f"spark session: {time.monotonic() - started:.1f} s (not counted below)")
    began = time.monotonic()
    result = run_pipeline(
        spark, RunConfig(input=str(log_dir), output=str(out), timezone=args.timezone, skip_quality=args.skip_quality)
    )
    seconds = time.monotonic() - began
    print("\n".join(result.lines()))
    print(
        f"RESULT appointments={args.appointments} events={result.events_read} seconds={seconds:.1f} "
        f"events_per_second={result.events_read / seconds:,.0f} "
        + " ".join(f"{stage}={value:.1f}s" for stage, value in result.stage_seconds.items())
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
