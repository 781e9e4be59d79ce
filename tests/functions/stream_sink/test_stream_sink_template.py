"""infra/stream-sink.yaml under cfn-lint, with the project's rule (infra/rules) that keeps the sink's
failure-handling and concurrency settings from being dropped."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.api import lint
from cfnlint.decode import decode_str
from cfnlint.helpers import load_plugins
from cfnlint.rules import RulesCollection

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "infra" / "stream-sink.yaml"
RULES = ROOT / "infra" / "rules"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def load_template() -> dict:
    template, errors = decode_str(TEMPLATE.read_text())
    assert not errors, errors
    return template


def project_rules_only(template: dict) -> list:
    """The project's rules, loaded the way `--append-rules` loads them, without the (slow) standard set."""
    rules = RulesCollection()
    for rule in load_plugins(str(RULES)):
        rules.register(rule)
    return lint(json.dumps(template), rules=rules, regions=["us-east-1"])


def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CFN_LINT), "--append-rules", str(RULES), "--", str(path)], capture_output=True, text=True, timeout=120
    )


def test_template_passes_cfn_lint_with_the_project_rules():
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_cfn_lint_fails_the_template_without_reserved_concurrency(tmp_path):
    text = TEMPLATE.read_text()
    setting = "      ReservedConcurrentExecutions: !Ref ReservedConcurrency\n"
    assert text.count(setting) == 1
    broken = tmp_path / "stream-sink.yaml"
    broken.write_text(text.replace(setting, ""))
    result = cfn_lint(broken)
    assert result.returncode != 0
    assert "E9101 SinkFunction: set ReservedConcurrentExecutions" in result.stdout


def _drop(path):
    def mutate(template):
        node = template["Resources"]
        for name in path[:-1]:
            node = node[name]
        del node[path[-1]]

    return mutate


def _set(path, value):
    def mutate(template):
        node = template["Resources"]
        for name in path[:-1]:
            node = node[name]
        node[path[-1]] = value

    return mutate


ESM = ["SinkEventSourceMapping", "Properties"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (_drop(ESM + ["DestinationConfig"]), "DestinationConfig.OnFailure.Destination"),
        (_drop(ESM + ["DestinationConfig", "OnFailure"]), "DestinationConfig.OnFailure.Destination"),
        (_drop(["SinkFunction", "Properties", "ReservedConcurrentExecutions"]), "ReservedConcurrentExecutions"),
        (_drop(ESM + ["FunctionResponseTypes"]), "ReportBatchItemFailures"),
        (_set(ESM + ["FunctionResponseTypes"], []), "ReportBatchItemFailures"),
        (_drop(ESM + ["BisectBatchOnFunctionError"]), "BisectBatchOnFunctionError"),
        (_set(ESM + ["BisectBatchOnFunctionError"], False), "BisectBatchOnFunctionError"),
        (_drop(ESM + ["MaximumRetryAttempts"]), "MaximumRetryAttempts"),
        (_drop(ESM + ["MaximumRecordAgeInSeconds"]), "MaximumRecordAgeInSeconds"),
    ],
    ids=[
        "no-destination",
        "no-on-failure",
        "no-reserved-concurrency",
        "no-response-types",
        "empty-response-types",
        "no-bisect",
        "bisect-false",
        "no-max-retries",
        "no-max-record-age",
    ],
)
def test_removing_a_required_setting_fails_the_lint(mutate, expected):
    template = load_template()
    assert project_rules_only(template) == []
    broken = copy.deepcopy(template)
    mutate(broken)
    errors = project_rules_only(broken)
    assert [error.rule.id for error in errors] == ["E9101"], errors
    assert expected in errors[0].message


def test_rule_ignores_mappings_that_do_not_read_a_dynamodb_stream():
    template = load_template()
    esm = template["Resources"]["SinkEventSourceMapping"]["Properties"]
    esm["EventSourceArn"] = {"Fn::GetAtt": ["SinkFailureQueue", "Arn"]}
    for name in ("BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "DestinationConfig",
                 "StartingPosition", "ParallelizationFactor"):
        del esm[name]
    assert project_rules_only(template) == []


def _statements(template):
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                yield from policy["PolicyDocument"]["Statement"]


def test_sink_role_grants_named_actions_on_named_resources_only():
    statements = list(_statements(load_template()))
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all("*" not in action for action in actions), statement
        assert all(resource != "*" for resource in resources), statement
    writes = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert writes[0]["Resource"] == {"Fn::Sub": "${RawBucket.Arn}/${RawPrefix}appointments/*"}
