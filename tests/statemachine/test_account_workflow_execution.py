"""The whole account workflow definition, executed by moto's Step Functions engine over HTTP.

The DynamoDB table and SQS queue are real moto resources. moto runs no Lambda code without Docker,
so the Validate task's response is the real handler's output for the submitted form, computed here
and queued as the function's next result (moto's lambda-simple API); the handler itself is tested
in test_account_validation.py.
"""
from __future__ import annotations

import json

from functions.account_validation.handler import validate_form

FORM = {"student_id": " 0012345", "email": " Ana.Lopez@Uni.EDU ", "first_name": "ana  maria", "last_name": "LOPEZ"}


def _submit(workflow, form):
    workflow.queue_validation_result(validate_form(form))
    return workflow.run(form)


def test_first_submission_creates_the_account_and_one_notification_then_a_duplicate_writes_nothing(workflow):
    account = validate_form(FORM)

    first = _submit(workflow, FORM)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    output = json.loads(first["output"])
    assert output["status"] == "created"
    assert output["student_id"] == "0012345"

    items = workflow.accounts()
    assert len(items) == 1
    item = items[0]
    assert {name: value["S"] for name, value in item.items() if name in account} == account
    assert item["created_by_execution"]["S"] == first["executionArn"]
    assert item["created_at"]["S"] >= first["startDate"].isoformat()[:19]

    messages = workflow.drain_queue()
    assert len(messages) == 1
    message_id, body = messages[0]
    assert output["notification_message_id"] == message_id
    assert body == {"type": "account_created", **account, "execution_id": first["executionArn"]}

    second = _submit(workflow, FORM)
    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert json.loads(second["output"]) == {"status": "already_existed", "student_id": "0012345"}
    assert workflow.accounts() == items
    assert workflow.drain_queue() == []


def test_losing_a_race_to_a_concurrent_submission_reports_already_existed(workflow, definition):
    # Another execution created the account after this one's getItem found none: start at CreateAccount
    # with what that state receives, so the putItem's attribute_not_exists condition is what decides.
    winner = {"student_id": {"S": "7654321"}, "email": {"S": "first@uni.edu"}, "first_name": {"S": "Ana"},
              "last_name": {"S": "Lopez"}, "created_at": {"S": "2026-09-01T08:00:00+00:00"}}
    workflow.dynamodb.put_item(TableName=workflow.table_name, Item=winner)
    definition["StartAt"] = "CreateAccount"
    late = workflow.deploy_variant(definition)

    account = {"student_id": "7654321", "email": "second@uni.edu", "first_name": "Ana", "last_name": "Lopez"}
    result = workflow.run({"account": account}, state_machine_arn=late)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert json.loads(result["output"]) == {"status": "already_existed", "student_id": "7654321"}
    assert workflow.accounts() == [winner]
    assert workflow.drain_queue() == []


def test_a_failing_service_ends_in_a_clear_failure_and_nothing_is_sent(workflow):
    workflow.dynamodb.delete_table(TableName=workflow.table_name)

    result = _submit(workflow, FORM)

    assert result["status"] == "FAILED"
    assert result["error"] == "AccountNotCreated"
    assert result["cause"].startswith("No account was created. DynamoDB.ResourceNotFoundException: ")
    assert workflow.drain_queue() == []
