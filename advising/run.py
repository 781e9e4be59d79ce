"""`advising run`: compaction and every aggregate in one local (or cluster) Spark application.

Same flags as the spark-submit entry (jobs.config.add_run_arguments), same code path (jobs.pipeline).
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
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from jobs.pipeline import execute

    return execute(RunConfig.from_namespace(args), master=args.master)
