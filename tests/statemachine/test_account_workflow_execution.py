"""The whole account workflow definition, executed by moto's Step Functions engine over HTTP.

The DynamoDB table and SQS queue are real moto resources. moto runs no Lambda code without Docker,
so the Validate task's response is the real handler's output for the submitted request (verified
identity and form, as the API's mapping template builds it), computed here
and queued as the function's next result (moto's lambda-simple API); the handler itself is tested
in test_account_validation.py.
"""
from __future__ import annotations

import json

from functions.account_validation.handler import handler


def _request(claimed_id: str, claimed_email: str, **form: str) -> dict:
    """An execution input as the API's mapping template builds it: verified claims (strings) and the body."""
    return {"identity": {"student_id": claimed_id, "email": claimed_email, "email_verified": "true"}, "form": form}


REQUEST = _request(" 0012345", " Ana.Lopez@Uni.EDU ", first_name="ana  maria", last_name="LOPEZ")


def _submit(workflow, request):
    workflow.queue_validation_result(handler(request, None))
    return workflow.run(request)


def test_first_submission_creates_the_account_and_one_notification_then_a_duplicate_writes_nothing(workflow):
    account = handler(REQUEST, None)

    first = _submit(workflow, REQUEST)
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

    second = _submit(workflow, REQUEST)
    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert json.loads(second["output"]) == {"status": "already_existed", "student_id": "0012345"}
    assert workflow.accounts() == items
    assert workflow.drain_queue() == []


def test_a_form_naming_another_student_creates_only_the_signed_in_students_account(workflow):
    # Issue 15: the form once bound any student id to any address. Now the id and address come from the
    # verified token: the named student's id stays free for them, and no mail goes to the form's address.
    squatter = _request("0012345", "ana.lopez@uni.edu", student_id="7654321", email="someone@example.com",
                        first_name="Ana", last_name="Lopez")

    first = _submit(workflow, squatter)

    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert json.loads(first["output"])["student_id"] == "0012345"
    assert [item["student_id"]["S"] for item in workflow.accounts()] == ["0012345"]
    assert [body["email"] for _, body in workflow.drain_queue()] == ["ana.lopez@uni.edu"]

    # GIVEN the squatting attempt WHEN the named student signs in and submits THEN their account is created.
    real = _submit(workflow, _request("7654321", "m.khan@uni.edu", first_name="Mina", last_name="Khan"))

    assert json.loads(real["output"])["status"] == "created"
    assert sorted(item["student_id"]["S"] for item in workflow.accounts()) == ["0012345", "7654321"]
    assert [body["email"] for _, body in workflow.drain_queue()] == ["m.khan@uni.edu"]


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

    result = _submit(workflow, REQUEST)

    assert result["status"] == "FAILED"
    assert result["error"] == "AccountNotCreated"
    assert result["cause"].startswith("No account was created. DynamoDB.ResourceNotFoundException: ")
    assert workflow.drain_queue() == []
