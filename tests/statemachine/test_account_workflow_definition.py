"""The account workflow's definition and template, checked statically.

A real ASL validator (npm asl-validator, installed by `make setup`) checks the definition; the
structure tests check what moto cannot execute (the Lambda's error path) and the retry policy of
every Task; cfn-lint checks the CloudFormation template that deploys it.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from cfnlint.decode import decode

from functions.account_validation.handler import InvalidAccountForm

from account_workflow_support import DEFINITION_PATH, PLACEHOLDER, REPO, TEMPLATE_PATH, python_tool

# npm installs the validator into the repository (package.json), whichever Python environment runs the tests.
ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"

# Per service: the throttling and transient service errors every Task of that service must retry.
TRANSIENT_ERRORS = {
    "lambda": {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
               "Lambda.TooManyRequestsException"},
    "dynamodb": {"DynamoDB.ProvisionedThroughputExceededException", "DynamoDB.ThrottlingException",
                 "DynamoDB.RequestLimitExceeded", "DynamoDB.InternalServerErrorException"},
    "sqs": {"SQS.SdkClientException", "SQS.AmazonSQSException", "SQS.KmsThrottledException"},
}
# Errors that retrying cannot fix: a bad form stays bad, an existing account stays existing.
NEVER_RETRIED = {"States.ALL", "States.TaskFailed", InvalidAccountForm.__name__,
                 "DynamoDB.ConditionalCheckFailedException"}


def _run_validator(path: Path) -> subprocess.CompletedProcess:
    assert ASL_VALIDATOR.exists(), f"{ASL_VALIDATOR} is missing: run `make setup` (npm ci installs asl-validator)"
    return subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)


def _task_states(definition):
    return {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}


def _service(task) -> str:
    return task["Resource"].split(":::")[1].split(":")[0]


def _catcher(state, error):
    return next(catcher for catcher in state["Catch"] if error in catcher["ErrorEquals"])


def _template():
    template, matches = decode(str(TEMPLATE_PATH))
    assert not matches, matches
    return template


def test_asl_validator_accepts_the_definition():
    result = _run_validator(DEFINITION_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_asl_validator_rejects_a_broken_definition(definition, tmp_path):
    # Proves the validator really checks: a transition to a state that does not exist.
    definition["States"]["CheckExisting"]["Next"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(definition))
    result = _run_validator(broken)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr


def test_invalid_form_is_caught_into_a_fail_state_with_the_validators_message(definition):
    validate = definition["States"][definition["StartAt"]]
    assert validate["Resource"] == "arn:aws:states:::lambda:invoke"
    first = validate["Catch"][0]
    assert first["ErrorEquals"] == [InvalidAccountForm.__name__], "the form error must be matched before States.ALL"
    fail = definition["States"][first["Next"]]
    assert fail["Type"] == "Fail"
    assert fail["Error"] == "InvalidAccountForm"
    # The cause carries the Lambda error's Cause (its errorMessage lists every problem) from the catcher's ResultPath.
    assert first["ResultPath"] == "$.error"
    assert "$.error.Cause" in fail["CausePath"]
    assert "rejected" in fail["CausePath"]


def test_every_task_retries_throttling_and_service_errors_with_backoff(definition):
    tasks = _task_states(definition)
    assert {_service(task) for task in tasks.values()} == set(TRANSIENT_ERRORS)
    for name, task in tasks.items():
        retried = set()
        for retrier in task["Retry"]:
            assert retrier["BackoffRate"] > 1, name
            assert retrier["MaxAttempts"] >= 3, name
            assert retrier["IntervalSeconds"] >= 1, name
            assert not NEVER_RETRIED & set(retrier["ErrorEquals"]), f"{name} retries an error that cannot heal"
            retried |= set(retrier["ErrorEquals"])
        missing = TRANSIENT_ERRORS[_service(task)] - retried
        assert not missing, f"{name} does not retry {sorted(missing)}"


def test_every_task_catches_everything_else_into_a_named_failure(definition):
    for name, task in _task_states(definition).items():
        last = task["Catch"][-1]
        assert last["ErrorEquals"] == ["States.ALL"], name
        fail = definition["States"][last["Next"]]
        assert fail["Type"] == "Fail", name
        assert fail["Error"] and fail["CausePath"], name
        assert "$.error.Error" in fail["CausePath"] and "$.error.Cause" in fail["CausePath"], name


def test_notification_failure_says_the_account_exists(definition):
    notify = definition["States"]["NotifyStudent"]
    assert notify["Resource"] == "arn:aws:states:::sqs:sendMessage"
    fail = definition["States"][_catcher(notify, "States.ALL")["Next"]]
    assert fail["Error"] == "AccountCreatedNotificationFailed"
    assert fail["Error"] != definition["States"][_catcher(definition["States"]["CreateAccount"], "States.ALL")["Next"]]["Error"]


def test_existing_account_is_checked_and_created_by_direct_dynamodb_calls(definition):
    template = _template()
    key = template["Resources"]["AccountsTable"]["Properties"]["KeySchema"][0]["AttributeName"]
    check = definition["States"]["CheckExisting"]
    assert check["Resource"] == "arn:aws:states:::dynamodb:getItem"
    assert check["Parameters"]["ConsistentRead"] is True
    choice = definition["States"][check["Next"]]
    assert choice["Type"] == "Choice"
    assert choice["Choices"][0]["Next"] == "AlreadyExisted"

    create = definition["States"][choice["Default"]]
    assert create["Resource"] == "arn:aws:states:::dynamodb:putItem"
    assert create["Parameters"]["ConditionExpression"] == f"attribute_not_exists({key})"
    assert key in create["Parameters"]["Item"]


def test_failed_condition_means_already_existed_not_failure(definition):
    create = definition["States"]["CreateAccount"]
    errors = [catcher["ErrorEquals"] for catcher in create["Catch"]]
    assert errors.index(["DynamoDB.ConditionalCheckFailedException"]) < errors.index(["States.ALL"])
    target = definition["States"][_catcher(create, "DynamoDB.ConditionalCheckFailedException")["Next"]]
    assert target["Type"] == "Pass" and target["End"] is True
    assert target["Parameters"]["status"] == "already_existed"
    assert definition["States"]["Created"]["Parameters"]["status"] == "created"


def test_placeholders_are_exactly_the_templates_substitutions():
    placeholders = set(PLACEHOLDER.findall(DEFINITION_PATH.read_text()))
    machine = _template()["Resources"]["AccountWorkflow"]["Properties"]
    substitutions = machine["DefinitionSubstitutions"]
    assert placeholders == set(substitutions)
    assert substitutions["AccountValidationFunctionArn"] == {"Fn::GetAtt": ["ValidationFunction", "Arn"]}
    assert substitutions["AccountsTableName"] == {"Ref": "AccountsTable"}
    assert substitutions["NotificationQueueUrl"] == {"Ref": "NotificationQueue"}
    assert set(machine["DefinitionS3Location"]) == {"Bucket", "Key"}


def test_template_passes_cfn_lint():
    result = subprocess.run(
        [python_tool("cfn-lint"), "--append-rules", str(REPO / "infra" / "rules"), "--", str(TEMPLATE_PATH)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _statements(role):
    return [statement for policy in role["Properties"]["Policies"] for statement in policy["PolicyDocument"]["Statement"]]


def test_api_starts_the_execution_directly_with_only_start_execution_rights():
    resources = _template()["Resources"]
    integration = resources["PostAccountMethod"]["Properties"]["Integration"]
    assert integration["Type"] == "AWS"
    assert integration["Uri"] == {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}:states:action/StartExecution"}
    assert "${AccountWorkflow}" in integration["RequestTemplates"]["application/json"]["Fn::Sub"]
    assert integration["Credentials"] == {"Fn::GetAtt": ["ApiStartExecutionRole", "Arn"]}
    assert _statements(resources["ApiStartExecutionRole"]) == [
        {"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": "AccountWorkflow"}}
    ]


def test_state_machine_role_may_only_call_its_three_resources():
    resources = _template()["Resources"]
    task_policy = resources["StateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    granted = {}
    for statement in task_policy:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            granted[action] = statement["Resource"]
    assert granted == {
        "lambda:InvokeFunction": {"Fn::GetAtt": ["ValidationFunction", "Arn"]},
        "dynamodb:GetItem": {"Fn::GetAtt": ["AccountsTable", "Arn"]},
        "dynamodb:PutItem": {"Fn::GetAtt": ["AccountsTable", "Arn"]},
        "sqs:SendMessage": {"Fn::GetAtt": ["NotificationQueue", "Arn"]},
    }
    # The only "*" resources are the log-delivery and X-Ray actions, which accept nothing else.
    for statement in _statements(resources["StateMachineRole"]) + _statements(resources["ValidationFunctionRole"]):
        if statement["Resource"] == "*":
            assert all(action.startswith(("logs:", "xray:")) for action in statement["Action"]), statement
            assert not any(action.startswith("logs:") and action.endswith(("PutLogEvents", "CreateLogStream"))
                           for action in statement["Action"]), statement


def _request_template() -> str:
    integration = _template()["Resources"]["PostAccountMethod"]["Properties"]["Integration"]
    return integration["RequestTemplates"]["application/json"]["Fn::Sub"]


def test_posting_the_form_needs_the_students_cognito_id_token():
    # Issue 15: the endpoint was public, so anyone could claim any student.
    resources = _template()["Resources"]
    method = resources["PostAccountMethod"]["Properties"]
    assert method["AuthorizationType"] == "COGNITO_USER_POOLS"
    assert method["AuthorizerId"] == {"Ref": "StudentAuthorizer"}
    # No scopes: API Gateway then requires the ID token, the one that carries the e-mail and student id claims.
    assert "AuthorizationScopes" not in method
    authorizer = resources["StudentAuthorizer"]["Properties"]
    assert authorizer["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["ProviderARNs"] == [{"Ref": "StudentUserPoolArn"}]
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["RestApiId"] == {"Ref": "AccountsApi"}


def test_the_execution_takes_student_id_and_email_from_the_token_claims_and_only_names_from_the_body():
    template = _request_template()
    claims = {
        name: re.search(rf"#set\(\${name} = (.*)\)$", template, re.MULTILINE).group(1)
        for name in ("studentId", "email", "emailVerified")
    }
    assert "$claims['${StudentIdClaim}']" in claims["studentId"]
    assert "$claims['email']" in claims["email"]
    assert "$claims['email_verified']" in claims["emailVerified"]
    assert "#set($claims = $context.authorizer.claims)" in template
    # Each claim is escaped twice (a JSON string inside the input string), so no claim can inject JSON.
    assert all(value.count("$util.escapeJavaScript(") == 2 for value in claims.values())
    input_line = next(line for line in template.splitlines() if line.strip().startswith('"input":'))
    assert input_line.strip().startswith(
        '"input": "{\\"identity\\": {\\"student_id\\": \\"$!studentId\\", \\"email\\": \\"$!email\\", '
        '\\"email_verified\\": \\"$!emailVerified\\"}, \\"form\\": $util.escapeJavaScript($input.json(\'$\'))'
    )
    # The body is read once, as the form: nothing of it can reach the identity.
    assert template.count("$input") == 1


def test_each_client_is_throttled_by_a_waf_rate_rule_on_the_stage():
    resources = _template()["Resources"]
    acl = resources["AccountsWebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    [rule] = acl["Rules"]
    assert rule["Action"] == {"Block": {}}
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP"
    assert rate["Limit"] == {"Ref": "ClientRequestsPerFiveMinutes"}
    association = resources["AccountsWebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["AccountsWebAcl", "Arn"]}
    assert association["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${AccountsApi}/stages/${ApiStage}"
    }
