"""`advising emr submit`: hand one night's run to a running cluster, a transient cluster or EMR Serverless,
without ever starting the same run twice, and optionally wait for its outcome.

Idempotency: a step's name carries its run date. Before adding anything, the active (PENDING/RUNNING)
steps are listed; an identical one (same name, jar, arguments and ActionOnFailure) is returned instead
of adding a duplicate, which is what a scheduler retry needs. A step with the same name but other
arguments (another artifact version, say) is refused: two runs writing the same tables at once would
race. Waiting is a loop over a `get_status()` callable, so its logic is tested with plain functions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from advising.emr.aws import aws_errors
from common.errors import UsageError

ACTIVE_STEP_STATES = ["PENDING", "RUNNING"]
ACTIVE_CLUSTER_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]
ACTIVE_SERVERLESS_STATES = ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED"]
SUCCEEDED = {"COMPLETED", "SUCCESS"}
FINISHED = SUCCEEDED | {"FAILED", "CANCELLED", "INTERRUPTED"}


@dataclass(frozen=True)
class Submitted:
    """One run handed to AWS: a step on a cluster, or a job run on a Serverless application."""

    target: str  # cluster id or application id
    run_id: str  # step id or job run id
    name: str
    reused: bool


@dataclass(frozen=True)
class RunStatus:
    state: str
    failure_reason: Optional[str] = None
    logs: Optional[str] = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCEEDED


def _same_step(summary: dict, wanted: dict) -> bool:
    config = summary.get("Config", {})
    return (
        summary.get("Name") == wanted["Name"]
        and summary.get("ActionOnFailure") == wanted["ActionOnFailure"]
        and config.get("Jar") == wanted["HadoopJarStep"]["Jar"]
        and list(config.get("Args", [])) == wanted["HadoopJarStep"]["Args"]
    )


def active_steps(emr, cluster_id: str) -> list:
    with aws_errors(f"listing the steps of cluster {cluster_id}"):
        pages = emr.get_paginator("list_steps").paginate(ClusterId=cluster_id, StepStates=ACTIVE_STEP_STATES)
        return [step for page in pages for step in page["Steps"]]


def _match_active(active: list, cluster_id: str, wanted: dict) -> Optional[Submitted]:
    """The active step identical to `wanted`, None if there is none, UsageError on a conflicting one."""
    for summary in active:
        if summary.get("Name") != wanted["Name"]:
            continue
        if _same_step(summary, wanted):
            return Submitted(cluster_id, summary["Id"], wanted["Name"], reused=True)
        raise UsageError(
            f"step {wanted['Name']} is already {summary['Status']['State']} on {cluster_id} ({summary['Id']}) "
            "with other arguments; wait for it or cancel it before submitting this one"
        )
    return None


def add_steps(emr, cluster_id: str, steps: list) -> list:
    """AddJobFlowSteps for the steps that are not already pending or running on the cluster."""
    active = active_steps(emr, cluster_id)
    wanted = [step.emr_step() for step in steps]
    matches = [_match_active(active, cluster_id, w) for w in wanted]
    missing = [w for w, m in zip(wanted, matches) if m is None]
    if missing:
        with aws_errors(f"adding steps to cluster {cluster_id}"):
            ids = iter(emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=missing)["StepIds"])
        matches = [m or Submitted(cluster_id, next(ids), w["Name"], reused=False) for w, m in zip(wanted, matches)]
    return matches


def start_transient(emr, request: dict) -> list:
    """RunJobFlow, unless an active cluster of the same name already runs identical steps."""
    with aws_errors("listing active clusters"):
        pages = emr.get_paginator("list_clusters").paginate(ClusterStates=ACTIVE_CLUSTER_STATES)
        same_name = [c["Id"] for page in pages for c in page["Clusters"] if c["Name"] == request["Name"]]
    for cluster_id in same_name:
        active = active_steps(emr, cluster_id)
        matches = [_match_active(active, cluster_id, w) for w in request["Steps"]]
        if all(matches):
            return matches
    with aws_errors("creating the transient cluster"):
        cluster_id = emr.run_job_flow(**request)["JobFlowId"]
        by_name = {}
        for page in emr.get_paginator("list_steps").paginate(ClusterId=cluster_id):
            by_name.update({s["Name"]: s["Id"] for s in page["Steps"]})
    return [Submitted(cluster_id, by_name[w["Name"]], w["Name"], reused=False) for w in request["Steps"]]


def start_serverless(client, request: dict) -> Submitted:
    """StartJobRun, unless an identical job run is still active on the application."""
    app = request["applicationId"]
    with aws_errors(f"listing job runs of application {app}"):
        pages = client.get_paginator("list_job_runs").paginate(applicationId=app, states=ACTIVE_SERVERLESS_STATES)
        runs = [run for page in pages for run in page["jobRuns"] if run["name"] == request["name"]]
        for run in runs:
            detail = client.get_job_run(applicationId=app, jobRunId=run["id"])["jobRun"]
            if detail.get("jobDriver") == request["jobDriver"]:
                return Submitted(app, run["id"], request["name"], reused=True)
        if runs:
            raise UsageError(
                f"job run {request['name']} is already {runs[0]['state']} on {app} ({runs[0]['id']}) with other "
                "arguments; wait for it or cancel it before submitting this one"
            )
        started = client.start_job_run(**request)
    return Submitted(app, started["jobRunId"], request["name"], reused=False)


def step_status(emr, cluster_id: str, step_id: str) -> Callable[[], RunStatus]:
    """get_status() for an EMR step; its logs are under the cluster's LogUri."""
    with aws_errors(f"describing cluster {cluster_id}"):
        log_uri = emr.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri", "")
    default_logs = f"{log_uri.replace('s3n://', 's3://', 1).rstrip('/')}/{cluster_id}/steps/{step_id}/" if log_uri else None

    def get_status() -> RunStatus:
        with aws_errors(f"describing step {step_id}"):
            status = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]
        failure = status.get("FailureDetails") or {}
        reason = " ".join(filter(None, [failure.get("Reason"), failure.get("Message")])) or None
        if reason is None and status.get("StateChangeReason", {}).get("Message"):
            reason = status["StateChangeReason"]["Message"]
        return RunStatus(status["State"], reason, failure.get("LogFile") or default_logs)

    return get_status


def job_run_status(client, application_id: str, run_id: str, log_uri: str) -> Callable[[], RunStatus]:
    """get_status() for an EMR Serverless job run; its logs are under the monitoring log URI."""
    logs = f"{log_uri.rstrip('/')}/applications/{application_id}/jobs/{run_id}/"

    def get_status() -> RunStatus:
        with aws_errors(f"reading job run {run_id}"):
            run = client.get_job_run(applicationId=application_id, jobRunId=run_id)["jobRun"]
        return RunStatus(run["state"], run.get("stateDetails") or None, logs)

    return get_status


def wait_for(
    get_status: Callable[[], RunStatus],
    *,
    interval: float,
    timeout: float,
    report: Callable[[RunStatus, float], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunStatus:
    """Poll until the run finishes or `timeout` seconds pass; returns the last status seen (not finished
    on timeout). `report` gets every status with the seconds elapsed, for the progress line."""
    start = clock()
    while True:
        status = get_status()
        elapsed = clock() - start
        report(status, elapsed)
        if status.finished or elapsed >= timeout:
            return status
        sleep(min(interval, max(timeout - elapsed, 0)))
