"""`advising sink ...`: operate the stream sink: `redrive` what its event source mapping gave up on, and
`build` its Lambda package. The work is in advising.sink_redrive and advising.sink_build."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("sink", help="operate the stream sink Lambda (redrive failed batches, build its package)")
    commands = parser.add_subparsers(dest="sink_command", metavar="SINK_COMMAND", required=True)

    redrive = commands.add_parser(
        "redrive",
        help="read the on-failure queue's stream batch records back from the stream and store them",
        description="For every DDBStreamBatchInfo message on --queue-url, read its records from the stream and write "
        "them under --raw with the handler's keys; a message is deleted once its records are stored.",
    )
    redrive.add_argument("--queue-url", required=True, help="URL of the sink's SQS on-failure queue (stack output)")
    redrive.add_argument("--raw", required=True, metavar="S3URI", help="the change-log root the sink writes, s3://BUCKET/PREFIX")
    redrive.add_argument("--dry-run", action="store_true", help="read and report, write and delete nothing")
    redrive.set_defaults(func=_redrive)

    build = commands.add_parser("build", help="build the stream sink's Lambda deployment package (zip)")
    build.add_argument("--out", required=True, metavar="ZIP", type=Path, help="where to write the zip")
    build.set_defaults(func=_build)


def _redrive(args: argparse.Namespace) -> int:
    import boto3

    from advising.sink_redrive import RedriveConfig, redrive

    config = RedriveConfig.from_args(args.queue_url, args.raw, args.dry_run)
    summary = redrive(config, boto3.client, say=lambda line: print(line, flush=True))
    print(
        f"sink redrive: {summary.messages} messages: {summary.records} records in {summary.objects} objects stored, "
        f"{summary.gone} ranges past retention, {summary.failed} failed" + (" (dry run)" if args.dry_run else "")
    )
    return summary.exit_status


def _build(args: argparse.Namespace) -> int:
    from advising.sink_build import build

    entries = build(args.out)
    print(f"sink build: {args.out} ({args.out.stat().st_size} bytes, {len(entries)} files); handler functions.stream_sink.handler.handler")
    return 0
