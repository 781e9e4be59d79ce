"""`advising emr submit` against moto over HTTP, and the waiting logic with plain functions."""
from __future__ import annotations

import functools
import json
import os

import boto3
import pytest

from advising.emr.submit import RunStatus, wait_for

VERSION = "0.1.0-test"
DATE = "2025-03-01"
BASE = f"s3://advising-emr-artifacts/advising/{VERSION}"


@pytest.fixture
def packaged(cli, artifacts_bucket):
    code, _, err = cli("emr", "package", "--artifact-version", VERSION)
    assert code == 0, err


@pytest.fixture
def cluster(aws_env):
    """A long-running cluster, created the ordinary way."""
    return boto3.client("emr").run_job_flow(
        Name="shared",
        ReleaseLabel="emr-7.9.0",
        Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge", "InstanceCount": 3,
                   "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        LogUri="s3://advising-emr-logs/emr/",
    )["JobFlowId"]


def submit(cli, *args):
    return cli("emr", "submit", "--date", DATE, "--artifact-version", VERSION, *args)


def dry_run(cli, *args):
    code, out, err = submit(cli, "--dry-run", *args)
    assert code == 0, err
    return json.loads(out)


def test_submit_to_a_cluster_adds_the_step_once(cli, packaged, cluster):
    code, out, err = submit(cli, "--cluster-id", cluster)
    assert code == 0, err
    assert out.startswith("submitted: advising-pipeline-2025-03-01 s-")
    emr = boto3.client("emr")
    [step] = emr.list_steps(ClusterId=cluster)["Steps"]
    assert step["Name"] == "advising-pipeline-2025-03-01"
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == [
        "spark-submit", "--deploy-mode", "cluster", "--conf", "spark.yarn.maxAppAttempts=1",
        "--py-files", f"{BASE}/jobs.zip", f"{BASE}/main.py",
        "--input", "s3://advising-data/changelog", "--output", "s3://advising-data/tables",
        "--timezone", "UTC", "--as-of", DATE, "--catalog-database", "advising",
    ]
    # The request printed by --dry-run is the one that was sent.
    assert dry_run(cli, "--cluster-id", cluster)["request"]["Steps"][0]["HadoopJarStep"]["Args"] == step["Config"]["Args"]

    code, out, err = submit(cli, "--cluster-id", cluster)
    assert code == 0, err
    assert out == f"already active: advising-pipeline-2025-03-01 {step['Id']} on {cluster}\n"
    assert len(emr.list_steps(ClusterId=cluster)["Steps"]) == 1

    # Another date is another run.
    code, out, err = cli("emr", "submit", "--date", "2025-03-02", "--artifact-version", VERSION, "--cluster-id", cluster)
    assert code == 0, err
    assert len(emr.list_steps(ClusterId=cluster)["Steps"]) == 2


def test_same_run_with_other_arguments_is_refused(cli, packaged, cluster):
    assert submit(cli, "--cluster-id", cluster)[0] == 0
    code, out, err = submit(cli, "--cluster-id", cluster, "--set", "campus_timezone=America/Chicago")
    assert code == 2
    assert err.count("\n") == 1 and "already RUNNING" in err and "other arguments" in err
    assert len(boto3.client("emr").list_steps(ClusterId=cluster)["Steps"]) == 1


def test_transient_cluster_request_passes_boto3_validation(cli, packaged):
    code, out, err = submit(cli, "--transient")
    assert code == 0, err
    emr = boto3.client("emr")
    [summary] = emr.list_clusters()["Clusters"]
    assert summary["Name"] == "advising-pipeline-2025-03-01"
    cluster = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.9.0" and cluster["LogUri"] == "s3://advising-emr-logs/emr/"
    assert [a["Name"] for a in cluster["Applications"]] == ["Spark"]
    assert cluster["SecurityConfiguration"] == "advising-emr-security"
    [bootstrap] = emr.list_bootstrap_actions(ClusterId=summary["Id"])["BootstrapActions"]
    assert bootstrap["ScriptPath"] == f"{BASE}/install-requirements.sh" and bootstrap["Args"] == [f"{BASE}/requirements.txt"]
    [step] = emr.list_steps(ClusterId=summary["Id"])["Steps"]
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert out == f"submitted: advising-pipeline-2025-03-01 {step['Id']} on {summary['Id']}\n"

    # Submitting again while that cluster runs the same step returns it.
    code, out, err = submit(cli, "--transient")
    assert code == 0 and out.startswith("already active:")
    assert len(emr.list_clusters()["Clusters"]) == 1

    request = dry_run(cli, "--transient")["request"]
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 3600}


def test_submit_needs_the_artifacts(cli, artifacts_bucket, cluster):
    code, out, err = submit(cli, "--cluster-id", cluster)
    assert code == 2 and "run `advising emr package` first" in err and err.count("\n") == 1
    assert boto3.client("emr").list_steps(ClusterId=cluster)["Steps"] == []


class SteppedClock:
    """A clock that moves only when `sleep` is called: waiting costs no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_reports_progress_and_gives_up(cli, packaged, cluster, monkeypatch):
    # moto's steps stay RUNNING forever: this exercises the real polling wiring (moto answers every poll)
    # up to the timeout, on a clock that advances by the seconds slept.
    import advising.emr.submit

    clock = SteppedClock()
    monkeypatch.setattr(advising.emr.submit, "wait_for", functools.partial(wait_for, sleep=clock.sleep, clock=clock))

    code, out, err = submit(cli, "--cluster-id", cluster, "--wait", "--poll-interval", "30", "--wait-timeout", "100")

    assert code == 1
    step_id = boto3.client("emr").list_steps(ClusterId=cluster)["Steps"][0]["Id"]
    progress = [l for l in err.splitlines() if "advising-pipeline-2025-03-01" in l]
    assert progress == [f"advising-pipeline-2025-03-01 {step_id}: RUNNING after {s}s" for s in (0, 30, 60, 90, 100)]
    assert out.splitlines()[-1] == (
        f"advising-pipeline-2025-03-01 {step_id}: still RUNNING after 100s (gave up waiting); "
        f"logs: s3://advising-emr-logs/emr/{cluster}/steps/{step_id}/"
    )


def test_serverless_job_run_and_wait(cli, packaged):
    client = boto3.client("emr-serverless")
    app = client.create_application(name="advising", releaseLabel="emr-7.9.0", type="SPARK")["applicationId"]
    # moto 5.2.5 answers ListJobRuns on an application without runs with ResourceNotFound (AWS answers
    # an empty list): another job's run works around it, and shows that only the same name matters.
    other = client.start_job_run(applicationId=app, executionRoleArn="arn:aws:iam::123456789012:role/job",
                                 name="other-job", jobDriver={"sparkSubmit": {"entryPoint": "s3://b/other.py"}})
    archive = ["--set", "serverless_python_archive=s3://advising-emr-artifacts/venv.tar.gz",
               "--set", "serverless_execution_role_arn=arn:aws:iam::123456789012:role/job"]
    code, out, err = submit(cli, "--serverless", app, "--wait", "--poll-interval", "0.05", *archive)
    assert code == 0, err
    [run] = [r for r in client.list_job_runs(applicationId=app)["jobRuns"] if r["id"] != other["jobRunId"]]
    detail = client.get_job_run(applicationId=app, jobRunId=run["id"])["jobRun"]
    expected = dry_run(cli, "--serverless", app, *archive)["request"]
    assert detail["jobDriver"] == expected["jobDriver"] and detail["name"] == "advising-pipeline-2025-03-01"
    assert detail["executionRole"] == "arn:aws:iam::123456789012:role/job"
    assert out.splitlines()[-1] == (
        f"advising-pipeline-2025-03-01 {run['id']}: SUCCESS; "
        f"logs: s3://advising-emr-logs/emr/applications/{app}/jobs/{run['id']}/"
    )
    # Without the Python environment the quality gate could not import: refused before any call.
    code, out, err = submit(cli, "--serverless", app)
    assert code == 2 and "serverless_python_archive" in err


def test_dry_run_needs_no_credentials_and_no_config(cli, monkeypatch):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for target in (["--transient"], ["--cluster-id", "j-ABC"], ["--serverless", "app-1"]):
        code, out, err = cli("emr", "submit", "--date", DATE, "--dry-run", *target)
        assert code == 0, err
        assert json.loads(out)["operation"] in {"RunJobFlow", "AddJobFlowSteps", "StartJobRun"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--date", "2025-02-30", "--transient"], "--date is not a real calendar date"),
        (["--date", "yesterday", "--transient"], "--date must be a date"),
        (["--date", DATE, "--transient", "--poll-interval", "0"], "--poll-interval"),
    ],
)
def test_misuse_is_one_line(cli, args, message):
    code, out, err = cli("emr", "submit", "--dry-run", *args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_target_is_required(cli):
    code, out, err = cli("emr", "submit", "--date", DATE, "--dry-run")
    assert code == 2 and "one of the arguments --cluster-id --transient --serverless is required" in err


def test_wait_for_returns_the_final_state():
    states = iter([RunStatus("PENDING"), RunStatus("RUNNING"), RunStatus("FAILED", "Step failed", "s3://logs/s-1/")])
    clock = iter(range(100))
    seen, slept = [], []
    final = wait_for(lambda: next(states), interval=30, timeout=3600, report=lambda s, e: seen.append((s.state, e)),
                     sleep=slept.append, clock=lambda: float(next(clock)))
    assert final == RunStatus("FAILED", "Step failed", "s3://logs/s-1/")
    assert final.finished and not final.succeeded
    assert [s for s, _ in seen] == ["PENDING", "RUNNING", "FAILED"]
    assert slept == [30, 30]


def test_wait_for_stops_at_the_timeout():
    clock = SteppedClock()
    final = wait_for(lambda: RunStatus("RUNNING"), interval=40, timeout=100, report=lambda s, e: None,
                     sleep=clock.sleep, clock=clock)
    assert final.state == "RUNNING" and not final.finished
    assert clock.now == 100  # the last sleep is cut to the deadline


@pytest.mark.parametrize("state, ok", [("COMPLETED", True), ("SUCCESS", True), ("CANCELLED", False), ("INTERRUPTED", False)])
def test_terminal_states(state, ok):
    final = wait_for(lambda: RunStatus(state), interval=1, timeout=10, report=lambda s, e: None, sleep=lambda s: None)
    assert final.finished and final.succeeded is ok
