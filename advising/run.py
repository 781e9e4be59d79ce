"""`advising run`: compaction and every aggregate in one local (or cluster) Spark application.

Same flags as the spark-submit entry (jobs.config.add_run_arguments), same code path (jobs.pipeline).
Every check that needs no Spark (flags, dates, time zone, a local input's layout) is done here, before
the JVM starts, so misuse is answered in well under 2 seconds (bench/misuse_bench.py).
"""
from __future__ import annotations

import argparse

from jobs.config import RunConfig, add_run_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="compact the change log and publish every table (Spark local mode by default)",
        description="Read the change log under --input, compact it, and publish appointments, "
        "advisor_daily_load, booking_trends_daily and quarantine under --output.",
    )
    add_run_arguments(parser)
    parser.add_argument("--master", default=None, help="Spark master (default: local[*]; ignored under spark-submit)")
    parser.add_argument(
        "--verbose", action="store_true", help="show Spark's, Hadoop's and py4j's own log lines (WARN and up)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = RunConfig.from_namespace(args)
    config.check_local_input()
    from jobs.pipeline import execute

    return execute(config, master=args.master, quiet=not args.verbose)
