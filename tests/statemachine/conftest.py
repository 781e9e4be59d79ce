"""Fixtures for the account workflow: the ASL definition, and its resources deployed into moto.

moto's Step Functions engine runs the definition for real once its config switch is on; the
DynamoDB table, SQS queue and Lambda function it calls are real moto resources, reached over HTTP.
"""
from __future__ import annotations

import io
import json
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from account_workflow_support import DEFINITION_PATH, REPO, render_definition

from tests.conftest import wait_until

EXECUTION_TIMEOUT_S = 30


def _moto_api(endpoint: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}", data=data, method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else {}


@pytest.fixture
def definition() -> dict[str, Any]:
    return json.loads(DEFINITION_PATH.read_text())


@dataclass
class WorkflowStack:
    """The deployed workflow and clients to inspect what it did."""

    endpoint: str
    state_machine_arn: str
    role_arn: str
    substitutions: dict[str, str]
    table_name: str
    queue_url: str
    sfn: Any
    dynamodb: Any
    sqs: Any

    def queue_validation_result(self, account: dict[str, str]) -> None:
        """The next Lambda invoke returns this payload (moto runs no Lambda code without Docker)."""
        _moto_api(self.endpoint, "static/lambda-simple/response", {"results": [json.dumps(account)], "region": "us-east-1"})

    def run(self, execution_input: dict, state_machine_arn: str | None = None) -> dict[str, Any]:
        """Start one execution with a unique name and wait (bounded) until it leaves RUNNING."""
        arn = self.sfn.start_execution(
            stateMachineArn=state_machine_arn or self.state_machine_arn,
            name=f"test-{uuid.uuid4()}",
            input=json.dumps(execution_input),
        )["executionArn"]

        def finished() -> dict | None:
            described = self.sfn.describe_execution(executionArn=arn)
            return described if described["status"] != "RUNNING" else None

        return wait_until(finished, f"execution {arn} still RUNNING after {EXECUTION_TIMEOUT_S} s", seconds=EXECUTION_TIMEOUT_S)

    def drain_queue(self) -> list[tuple[str, dict]]:
        """(MessageId, parsed body) of every message now on the notification queue, deleted as read."""
        received = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not messages.get("Messages"):
                return received
            for message in messages["Messages"]:
                received.append((message["MessageId"], json.loads(message["Body"])))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def accounts(self) -> list[dict]:
        return self.dynamodb.scan(TableName=self.table_name, ConsistentRead=True)["Items"]

    def deploy_variant(self, definition: dict) -> str:
        """Another state machine from a changed definition, with the same substitutions and role."""
        return self.sfn.create_state_machine(
            name=f"variant-{uuid.uuid4().hex[:12]}",
            definition=render_definition(json.dumps(definition), self.substitutions),
            roleArn=self.role_arn,
        )["stateMachineArn"]


def _handler_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(REPO / "functions" / "__init__.py", "functions/__init__.py")
        for path in (REPO / "functions" / "account_validation").glob("*.py"):
            archive.write(path, f"functions/account_validation/{path.name}")
    return buffer.getvalue()


@pytest.fixture
def moto_sfn_config(moto_endpoint):
    """Turn on ASL execution and Docker-less Lambda for this test, then restore the server's config."""
    before = _moto_api(moto_endpoint, "config")
    _moto_api(moto_endpoint, "config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
    yield
    _moto_api(moto_endpoint, "config", {key: before[key] for key in ("stepfunctions", "lambda") if key in before})


@pytest.fixture
def workflow(aws_env, moto_sfn_config) -> WorkflowStack:
    """Table, queue, validation function and state machine, deployed as infra/account-workflow.yaml does."""
    endpoint = aws_env
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    iam = boto3.client("iam", endpoint_url=endpoint)
    lambda_client = boto3.client("lambda", endpoint_url=endpoint)
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint)

    table_name = "student-accounts"
    dynamodb.create_table(
        TableName=table_name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "student_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "student_id", "KeyType": "HASH"}],
    )
    queue_url = sqs.create_queue(QueueName="account-notifications")["QueueUrl"]
    role_arn = iam.create_role(
        RoleName="account-workflow",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": ["states.amazonaws.com", "lambda.amazonaws.com"]},
             "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    function_arn = lambda_client.create_function(
        FunctionName="account-validation", Runtime="python3.12", Role=role_arn,
        Handler="functions.account_validation.handler.handler", Code={"ZipFile": _handler_zip()},
    )["FunctionArn"]

    substitutions = {
        "AccountValidationFunctionArn": function_arn,
        "AccountsTableName": table_name,
        "NotificationQueueUrl": queue_url,
    }
    state_machine_arn = sfn.create_state_machine(
        name="account-workflow", definition=render_definition(DEFINITION_PATH.read_text(), substitutions),
        roleArn=role_arn,
    )["stateMachineArn"]
    return WorkflowStack(endpoint, state_machine_arn, role_arn, substitutions, table_name, queue_url, sfn, dynamodb, sqs)
