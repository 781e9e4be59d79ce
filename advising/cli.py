"""The `advising` command line: one entry point for every part of the platform.

Each sub-command lives in its own module, which exposes `register(subparsers)`; this module only
wires them together and turns misuse (`UsageError`) into one line on stderr and exit status 2.
Command modules import their heavy dependencies (pyspark, boto3, ...) inside their handlers, so
`advising --help` stays fast and a missing optional dependency only affects its own command.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from common.arguments import OneLineArgumentParser
from common.errors import UsageError

# Modules that register sub-commands, in the order `advising --help` lists them.
COMMAND_MODULES = (
    "advising.sample_data",
    "advising.run",
    "advising.class_archive",
    "advising.local_fs",
    "advising.versions",
    "advising.bundle",
    "advising.emr.cli",
    "advising.backfill",
    "advising.sink",
    "advising.reconcile",
    "advising.edge",
    "advising.read_api",
    "advising.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="advising", description="Student-advising appointment analytics platform.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"advising {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("advising: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
