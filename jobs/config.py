"""Run configuration: the one typed object every entry point builds (CLI, spark-submit entry, EMR steps, DAG).

`RunConfig.to_args()` is the single source of truth for the job's command-line arguments: the
`advising run` command, the spark-submit entry script, the EMR step builder and the Airflow DAG all
go through `add_run_arguments` / `RunConfig.from_namespace` / `RunConfig.to_args`, so they cannot drift.

This module is shipped to the cluster: it must run on Python 3.9 (EMR 7.x), so no 3.10+ syntax.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

from common.arguments import OneLineArgumentParser
from common.errors import UsageError
from jobs.storage import join, local_path, normalize_root

DEFAULT_TIMEZONE = "UTC"
TIMEZONE_ENV = "ADVISING_TIMEZONE"
CATALOG_ENV = "ADVISING_CATALOG_DATABASE"
DEFAULT_KEEP_VERSIONS = 3
_GLUE_NAME = re.compile(r"[a-z0-9_]{1,255}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DRIVER_MEMORY_ENV = "ADVISING_DRIVER_MEMORY"
_MEMORY_SIZE = re.compile(r"[1-9][0-9]*[kmgt]?", re.IGNORECASE)


def parse_date(text: str, flag: str) -> dt.date:
    """A calendar date in YYYY-MM-DD form, or a UsageError naming the flag."""
    if not _DATE.fullmatch(text or ""):
        raise UsageError(f"{flag} must be a date in YYYY-MM-DD form, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} is not a real calendar date: {text!r}") from None


def check_timezone(name: str) -> str:
    """An IANA time zone name, or a UsageError. Offsets such as '+02:00' are refused on purpose:
    a campus observes daylight saving, which only a named zone carries."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or name != name.strip() or name.startswith(("+", "-")):
        raise UsageError(f"--timezone must be an IANA time zone name such as America/Chicago, got {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r}: use an IANA name such as America/Chicago or UTC") from None
    return name


def check_keep_versions(count: int) -> int:
    if count < 1:
        raise UsageError(f"--keep-versions must be at least 1 (the current version is always kept), got {count}")
    return count


def check_catalog_database(name: str) -> str:
    if not _GLUE_NAME.fullmatch(name):
        raise UsageError(f"--catalog-database must be a Glue database name (lower-case letters, digits, _), got {name!r}")
    return name


def check_input_layout(given: str, root: str, exists: Callable[[str], bool], is_dir: Callable[[str], bool]) -> None:
    """The input root exists and holds appointments/, or a UsageError naming the path as the user gave it.

    One rule for two callers: `advising run` checks a local root with os.path before the JVM starts
    (misuse is answered in well under 2 seconds), and the pipeline's plan checks any root through Hadoop.
    """
    if not exists(root):
        raise UsageError(f"input path does not exist: {given}")
    if not is_dir(join(root, "appointments")):
        raise UsageError(
            f"no appointments/ folder under {given}: expected {{input}}/appointments/ingest_date=YYYY-MM-DD/*.jsonl.gz"
        )


def check_driver_memory(size: str) -> str:
    if not _MEMORY_SIZE.fullmatch(size):
        raise UsageError(f"--driver-memory must be a JVM memory size such as 8g or 4096m, got {size!r}")
    return size


@dataclass(frozen=True)
class RunConfig:
    """Everything one pipeline run needs to know."""

    input: str
    output: str
    timezone: str = DEFAULT_TIMEZONE
    as_of: Optional[dt.date] = None
    full: bool = False
    skip_quality: bool = False
    # Glue database whose tables follow every commit (None: no catalog).
    catalog_database: Optional[str] = None
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    # Heap of a local run's Spark JVM (None: jobs.session sizes it from the machine); under spark-submit
    # the driver is already running and spark-submit's own --driver-memory applies.
    driver_memory: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.input:
            raise UsageError("--input is required")
        if not self.output:
            raise UsageError("--output is required")
        check_timezone(self.timezone)
        check_keep_versions(self.keep_versions)
        if self.catalog_database is not None:
            check_catalog_database(self.catalog_database)
        if self.driver_memory is not None:
            check_driver_memory(self.driver_memory)

    def check_local_input(self) -> None:
        """The input checks that need no Spark, for a local root (plain path or file://); remote roots
        (s3://) can only be listed through Hadoop, so the pipeline's plan checks them."""
        root = local_path(normalize_root(self.input))
        if root is not None:
            check_input_layout(self.input, root, os.path.exists, os.path.isdir)

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace, env: Optional[Mapping[str, str]] = None) -> "RunConfig":
        env = os.environ if env is None else env
        timezone = ns.timezone if ns.timezone is not None else env.get(TIMEZONE_ENV, DEFAULT_TIMEZONE)
        as_of = parse_date(ns.as_of, "--as-of") if ns.as_of is not None else None
        return cls(
            input=ns.input,
            output=ns.output,
            timezone=timezone,
            as_of=as_of,
            full=bool(ns.full),
            skip_quality=bool(getattr(ns, "skip_quality", False)),
            catalog_database=ns.catalog_database if ns.catalog_database is not None else env.get(CATALOG_ENV) or None,
            keep_versions=ns.keep_versions,
            driver_memory=getattr(ns, "driver_memory", None) or env.get(DRIVER_MEMORY_ENV) or None,
        )

    @classmethod
    def from_args(cls, argv: Sequence[str], env: Optional[Mapping[str, str]] = None) -> "RunConfig":
        parser = OneLineArgumentParser(prog="advising-job", description="Run the appointment pipeline.")
        add_run_arguments(parser)
        return cls.from_namespace(parser.parse_args(list(argv)), env)

    def to_args(self) -> list:
        """The job's arguments, exactly as the entry script and `advising run` accept them."""
        args = ["--input", self.input, "--output", self.output, "--timezone", self.timezone]
        if self.as_of is not None:
            args += ["--as-of", self.as_of.isoformat()]
        if self.full:
            args.append("--full")
        if self.skip_quality:
            args.append("--skip-quality")
        if self.catalog_database is not None:
            args += ["--catalog-database", self.catalog_database]
        if self.keep_versions != DEFAULT_KEEP_VERSIONS:
            args += ["--keep-versions", str(self.keep_versions)]
        if self.driver_memory is not None:
            args += ["--driver-memory", self.driver_memory]
        return args


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's flags; shared by `advising run` and the spark-submit entry."""
    parser.add_argument("--input", required=True, help="input root holding appointments/ (local path, file:// or s3://)")
    parser.add_argument("--output", required=True, help="output root for the published tables (local path, file:// or s3://)")
    parser.add_argument(
        "--timezone",
        default=None,
        help=f"IANA time zone of the campus, for every local date (default: ${TIMEZONE_ENV} or {DEFAULT_TIMEZONE})",
    )
    parser.add_argument("--as-of", default=None, metavar="YYYY-MM-DD", help="only read ingest_date folders up to this date")
    parser.add_argument("--full", action="store_true", help="ignore the incremental state and rebuild from the whole log")
    parser.add_argument(
        "--catalog-database",
        default=None,
        metavar="NAME",
        help=f"Glue database whose tables follow every commit (default: ${CATALOG_ENV}; none when unset)",
    )
    parser.add_argument(
        "--keep-versions",
        type=int,
        default=DEFAULT_KEEP_VERSIONS,
        metavar="N",
        help=f"versions kept after a commit, the current one included (default {DEFAULT_KEEP_VERSIONS})",
    )
    parser.add_argument(
        "--driver-memory",
        default=None,
        metavar="SIZE",
        help=f"heap of a local run's Spark JVM, e.g. 12g (default: ${DRIVER_MEMORY_ENV}, else half the machine's memory)",
    )
    parser.add_argument(
        "--skip-quality",
        action="store_true",
        help="EMERGENCY ONLY: publish without the data-quality gate",
    )
