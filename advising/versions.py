"""`advising versions` and `advising rollback`: the kept versions of an output, and making one current again.

Both go through jobs.versions, the module the pipeline commits with. No JVM is needed: a local output is read
with `os`, an s3:// one with boto3 (credentials and region as for the AWS CLI); only ADVISING_STORAGE=hadoop
sends them through Spark's Hadoop FileSystem API, as on a cluster.
"""
from __future__ import annotations

import argparse
import sys

from jobs.config import CATALOG_ENV


def register(subparsers) -> None:
    listing = subparsers.add_parser(
        "versions",
        help="list the kept versions of the published tables (run id, finished at, rows, which is current)",
        description="List the kept versions under --output, oldest first; `advising rollback --to RUN_ID` "
        "makes one of them current again.",
    )
    listing.add_argument("--output", required=True, help="output root given to `advising run`")
    listing.set_defaults(func=_versions)

    rollback = subparsers.add_parser(
        "rollback",
        help="make a kept version current again (tables, state and catalog together)",
        description="Make the version RUN_ID current again under --output: tables, compaction state and, with "
        "--catalog-database, the Glue tables. The next incremental run continues from it.",
    )
    rollback.add_argument("--output", required=True, help="output root given to `advising run`")
    rollback.add_argument("--to", required=True, metavar="RUN_ID", help="a run id listed by `advising versions`")
    rollback.add_argument(
        "--catalog-database",
        default=None,
        metavar="NAME",
        help=f"Glue database to switch too (default: ${CATALOG_ENV}; none when unset)",
    )
    rollback.set_defaults(func=_rollback)


def _store(output: str):
    from jobs.storage import Storage, normalize_root
    from jobs.versions import VersionStore

    storage = Storage()
    if storage.hadoop_only:
        from jobs.session import get_session

        storage = Storage(get_session("advising-versions"))
    return VersionStore(storage, normalize_root(output))


def _versions(args: argparse.Namespace) -> int:
    from common.errors import UsageError

    store = _store(args.output)
    versions = store.versions()
    if not versions:
        raise UsageError(f"no versions under {args.output}: nothing was published there yet")
    current = store.current_id()
    for version in versions:
        rows = ", ".join(f"{name} {count}" for name, count in version.rows.items())
        mark = "  (current)" if version.run_id == current else ""
        print(f"{version.run_id}  finished {version.finished_at}  {rows}{mark}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    import os

    from jobs.config import check_catalog_database

    database = args.catalog_database if args.catalog_database is not None else os.environ.get(CATALOG_ENV) or None
    if database is not None:
        check_catalog_database(database)
    store = _store(args.output)
    with store.lease(f"rollback-{args.to}"):
        store.recover()
        version = store.rollback(args.to)
    print(f"rollback: version {version.run_id} (finished {version.finished_at}) is current under {args.output}")
    if database is not None:
        import boto3

        from jobs.contract import TABLES
        from jobs.versions import sync_catalog

        try:
            changed = sync_catalog(boto3.client("glue"), database, store.root, version, TABLES)
        except Exception as exc:  # boto3's errors, a missing region or credentials: all end the same way
            print(f"advising rollback: error: version {version.run_id} is current, but the Glue tables in {database} "
                  f"were not updated: {' '.join(str(exc).split())}; run the rollback again", file=sys.stderr)
            return 1
        print(f"rollback: catalog {database}: {len(changed)} of {len(TABLES)} tables switched to version {version.run_id}")
    return 0
