"""`advising backfill`: turn a DynamoDB export to S3 into change-log objects the pipeline reads.

For when the stream (24-hour retention) is not enough: see functions.stream_sink.backfill.
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="write a DynamoDB table export into the change log as synthetic INSERT records",
        description="Read a full DynamoDB export (DynamoDB JSON, gzip) and write it under --raw in the change-log "
        "layout (appointments/ingest_date=<export date>/backfill-<ExportId>/). Re-running rewrites the same objects.",
    )
    parser.add_argument(
        "--export",
        required=True,
        metavar="S3_OR_PATH",
        help="the export's folder, the one holding manifest-summary.json (s3://BUCKET/PREFIX/AWSDynamoDB/<ExportId> or a local path)",
    )
    parser.add_argument(
        "--raw", required=True, metavar="S3_OR_PATH", help="change-log root the pipeline reads as --input (s3://BUCKET/PREFIX or a local path)"
    )
    parser.set_defaults(func=_backfill)


def _backfill(args: argparse.Namespace) -> int:
    from functions.stream_sink.backfill import backfill

    summary = backfill(args.export, args.raw)
    print(f"backfill: export {summary.export_id}: {summary.items} items in {len(summary.objects)} objects")
    for location in summary.objects:
        print(f"  {location}")
    return 0
