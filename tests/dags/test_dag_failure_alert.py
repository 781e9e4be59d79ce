"""A failed night is noticed (issue 15, point 6): the DAG's on_failure_callback and EMR's own failure events
match the EventBridge rules of infra/emr.yaml. The rules' patterns are read from the template and installed
in moto (over HTTP) with an SQS queue as target, standing in for the SNS topic, so what arrives is what the
topic would get."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from cfnlint.decode import decode

from advising.emr.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def dag_module():
    spec = importlib.util.spec_from_file_location("advising_pipeline_dag_alert", ROOT / "dags" / "advising_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rule_queue(aws_env, monkeypatch):
    """install(rule name in infra/emr.yaml) -> receive(): that rule in moto, delivering to a fresh queue."""
    monkeypatch.setenv("ADVISING_EMR_ARTIFACT_VERSION", "0.1.0-test")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    template, errors = decode(str(ROOT / "infra" / "emr.yaml"))
    assert not errors, errors
    events, sqs = boto3.client("events"), boto3.client("sqs")

    def install(rule: str):
        url = sqs.create_queue(QueueName=rule)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=rule, EventPattern=json.dumps(template["Resources"][rule]["Properties"]["EventPattern"]))
        events.put_targets(Rule=rule, Targets=[{"Id": "alerts", "Arn": arn}])

        def receive() -> list:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in messages]

        return receive

    return install


def test_a_failed_dag_run_puts_the_event_the_alert_rule_matches(rule_queue):
    receive = rule_queue("DagFailedRule")
    module = dag_module()
    context = {
        "dag_run": SimpleNamespace(dag_id=module.DAG_ID, run_id="scheduled__2025-03-01T06:00:00+00:00",
                                   logical_date=dt.datetime(2025, 3, 1, 6, tzinfo=dt.timezone.utc)),
        "reason": "task_failure",
    }

    module.failure_notifier(load_settings(env={}))(context)

    [event] = receive()
    assert (event["source"], event["detail-type"]) == ("advising.pipeline", "Advising DAG Run Failed")
    assert event["detail"] == {"dag_id": "advising_pipeline", "run_id": "scheduled__2025-03-01T06:00:00+00:00",
                               "logical_date": "2025-03-01T06:00:00+00:00", "reason": "task_failure"}


def test_the_dag_calls_the_notifier_when_a_run_fails(offline_env):
    offline_env.setenv("ADVISING_EMR_ARTIFACT_VERSION", "0.1.0-test")
    dag = dag_module().dag
    [callback] = dag.on_failure_callback if isinstance(dag.on_failure_callback, list) else [dag.on_failure_callback]
    assert callback.__qualname__ == "failure_notifier.<locals>.notify"


def emr_event(detail_type: str, name: str, state: str) -> dict:
    # The shape EMR sends (https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-manage-cloudwatch-events.html)
    return {"Source": "aws.emr", "DetailType": detail_type,
            "Detail": json.dumps({"name": name, "state": state, "clusterId": "j-1", "stepId": "s-1", "severity": "ERROR"})}


def test_failed_pipeline_steps_and_clusters_match_and_nothing_else_does(rule_queue):
    receive = rule_queue("PipelineFailedRule")
    sent = [
        emr_event("EMR Step Status Change", "advising-pipeline-2025-03-01", "FAILED"),
        emr_event("EMR Cluster State Change", "advising-pipeline-2025-03-01", "TERMINATED_WITH_ERRORS"),
        emr_event("EMR Step Status Change", "advising-pipeline-2025-03-01", "COMPLETED"),
        emr_event("EMR Cluster State Change", "advising-pipeline-2025-03-01", "TERMINATED"),
        emr_event("EMR Step Status Change", "someone-elses-job", "FAILED"),
    ]
    assert boto3.client("events").put_events(Entries=sent)["FailedEntryCount"] == 0

    got = sorted((e["detail-type"], e["detail"]["state"]) for e in receive())
    assert got == [("EMR Cluster State Change", "TERMINATED_WITH_ERRORS"), ("EMR Step Status Change", "FAILED")]
