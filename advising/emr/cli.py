"""`advising emr package|submit`: the command-line face of the EMR delivery.

Handlers only wire settings, artifacts and steps to boto3 clients; the decisions live in
settings/steps/launch/package/submit. `--dry-run` prints the request and touches no AWS API.
"""
from __future__ import annotations

import json
import sys

from advising.emr.settings import add_settings_arguments, settings_from_args
from jobs.config import parse_date

DEFAULT_POLL_SECONDS = 30.0
DEFAULT_WAIT_TIMEOUT = 6 * 3600.0


def register(subparsers) -> None:
    emr = subparsers.add_parser(
        "emr",
        help="package the jobs for EMR, submit a night's run, wait for it",
        description="Deliver the pipeline to Amazon EMR. Settings: docs/emr.md.",
    )
    commands = emr.add_subparsers(dest="emr_command", metavar="SUBCOMMAND", required=True)

    package = commands.add_parser(
        "package",
        help="build the artifacts and upload them to s3://BUCKET/PREFIX/<version>/ (no-op if already there)",
    )
    add_settings_arguments(package)
    package.set_defaults(func=_package)

    submit = commands.add_parser(
        "submit",
        help="run the pipeline for a date on a cluster, a transient cluster or EMR Serverless",
        description="Submit the nightly run for --date. Submitting again while the same run is pending "
        "or running returns that run instead of starting a second one.",
    )
    target = submit.add_mutually_exclusive_group(required=True)
    target.add_argument("--cluster-id", metavar="ID", help="add the steps to this running cluster (j-...)")
    target.add_argument("--transient", action="store_true", help="start a cluster that runs the steps, then terminates")
    target.add_argument("--serverless", metavar="APPLICATION_ID", help="start a job run on this EMR Serverless application")
    submit.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="run date: ingest_date folders up to it are read")
    submit.add_argument("--full", action="store_true", help="rebuild from the whole log instead of incrementally")
    submit.add_argument("--skip-quality", action="store_true", help="EMERGENCY ONLY: publish without the data-quality gate")
    submit.add_argument("--dry-run", action="store_true", help="print the exact request and call no AWS API")
    submit.add_argument("--wait", action="store_true", help="poll until the run finishes; exit 0 only if it succeeded")
    submit.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_SECONDS, metavar="SECONDS",
                        help=f"seconds between polls with --wait (default {DEFAULT_POLL_SECONDS:.0f})")
    submit.add_argument("--wait-timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
                        help=f"give up waiting after this long, exit 1 (default {DEFAULT_WAIT_TIMEOUT:.0f})")
    add_settings_arguments(submit)
    submit.set_defaults(func=_submit)


def _package(args) -> int:
    from advising.emr.aws import client
    from advising.emr.package import package, resolve_version
    from advising.emr.steps import artifacts_for

    settings = settings_from_args(args)
    version = resolve_version(settings)
    result = package(client("s3", settings.region), artifacts_for(settings.artifact_root, version), version)
    verb = "uploaded" if result.uploaded else "already uploaded, unchanged"
    print(f"{result.location}/ {verb}: {', '.join(result.files)}")
    return 0


def _submit(args) -> int:
    from advising.emr.aws import client
    from advising.emr.launch import job_flow_request, serverless_request, serverless_role_arn
    from advising.emr.package import require_uploaded, resolve_version
    from advising.emr.steps import artifacts_for, run_steps, step_name
    from common.errors import UsageError

    if args.poll_interval <= 0 or args.wait_timeout <= 0:
        raise UsageError("--poll-interval and --wait-timeout must be positive")
    run_date = parse_date(args.date, "--date")
    settings = settings_from_args(args)
    version = resolve_version(settings)
    artifacts = artifacts_for(settings.artifact_root, version)
    target = "cluster" if args.cluster_id else "transient"
    steps = run_steps(settings, version, run_date, target, full=args.full, skip_quality=args.skip_quality)

    if args.transient:
        tags = {"project": "advising-analytics", "run-date": run_date.isoformat(), "artifact-version": version}
        request = job_flow_request(settings, artifacts, step_name(run_date, args.full), steps, keep_alive=False, tags=tags)
        operation = "RunJobFlow"
    elif args.serverless:
        account = "<account-id>" if args.dry_run else None
        if account is None and not settings.serverless_execution_role_arn:
            from advising.emr.aws import aws_errors

            with aws_errors("reading the account id"):
                account = client("sts", settings.region).get_caller_identity()["Account"]
        request = serverless_request(settings, args.serverless, steps[0], serverless_role_arn(settings, account))
        operation = "StartJobRun"
    else:
        request = {"JobFlowId": args.cluster_id, "Steps": [step.emr_step() for step in steps]}
        operation = "AddJobFlowSteps"

    if args.serverless:
        _check_serverless_python(settings, strict=not args.dry_run)
    if args.dry_run:
        print(json.dumps({"operation": operation, "request": request}, indent=2))
        return 0

    require_uploaded(client("s3", settings.region), artifacts)
    return _run(args, settings, request, steps)


def _check_serverless_python(settings, strict: bool) -> None:
    from advising.bundle import runtime_requirements
    from common.errors import UsageError

    if settings.serverless_python_archive or not runtime_requirements():
        return
    message = ("EMR Serverless has no bootstrap actions: build the virtualenv archive of docs/emr.md and set "
               "serverless_python_archive")
    if strict:
        raise UsageError(message)
    print(f"warning: {message}", file=sys.stderr)


def _run(args, settings, request: dict, steps) -> int:
    from advising.emr.aws import client
    from advising.emr.submit import add_steps, job_run_status, start_serverless, start_transient, step_status, wait_for

    if args.serverless:
        serverless = client("emr-serverless", settings.region)
        submitted = [start_serverless(serverless, request)]
        statuses = [job_run_status(serverless, s.target, s.run_id, settings.log_uri) for s in submitted]
    else:
        emr = client("emr", settings.region)
        submitted = start_transient(emr, request) if args.transient else add_steps(emr, args.cluster_id, steps)
        statuses = [step_status(emr, s.target, s.run_id) for s in submitted] if args.wait else []
    for s in submitted:
        print(f"{'already active' if s.reused else 'submitted'}: {s.name} {s.run_id} on {s.target}")
    if not args.wait:
        return 0

    failed = False
    for s, get_status in zip(submitted, statuses):
        def report(status, elapsed, name=s.name, run_id=s.run_id):
            print(f"{name} {run_id}: {status.state} after {elapsed:.0f}s", file=sys.stderr, flush=True)

        final = wait_for(get_status, interval=args.poll_interval, timeout=args.wait_timeout, report=report)
        outcome = final.state if final.finished else f"still {final.state} after {args.wait_timeout:.0f}s (gave up waiting)"
        detail = f"; reason: {final.failure_reason}" if final.failure_reason and not final.succeeded else ""
        print(f"{s.name} {s.run_id}: {outcome}{detail}; logs: {final.logs or 'unknown'}")
        failed = failed or not final.succeeded
    return 1 if failed else 0
