"""The project's cfn-lint rule E9102 (infra/rules/BucketsDenyInsecureTransport.py): every S3 bucket in a
template has a policy denying requests without TLS; every template under infra/ passes it."""
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

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "rules"
TEMPLATES = sorted((ROOT / "infra").glob("*.yaml"))
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [{"Fn::GetAtt": ["Bucket", "Arn"]}, {"Fn::Sub": "${Bucket.Arn}/*"}],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def one_bucket(statements) -> dict:
    """A minimal template: one bucket and, when statements are given, its policy."""
    resources = {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}}}
    if statements is not None:
        resources["BucketPolicy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": "Bucket"},
                           "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}},
        }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def project_rule_ids(template: dict) -> list:
    """The ids the project's rules report, loaded the way `--append-rules` loads them."""
    rules = RulesCollection()
    for rule in load_plugins(str(RULES)):
        rules.register(rule)
    return [match.rule.id for match in lint(json.dumps(template), rules=rules, regions=["us-east-1"])]


def decoded(path: Path) -> dict:
    template, errors = decode_str(path.read_text())
    assert not errors, errors
    return template


def test_a_bucket_with_the_tls_deny_passes():
    assert project_rule_ids(one_bucket([DENY])) == []


@pytest.mark.parametrize(
    "statements",
    [
        None,
        [],
        [{**DENY, "Effect": "Allow"}],
        [{**DENY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}],
        [{**DENY, "Action": "s3:GetObject"}],
        [{**DENY, "Principal": {"Service": "cloudfront.amazonaws.com"}}],
        [{**DENY, "Resource": [{"Fn::GetAtt": ["Bucket", "Arn"]}]}],
        [{**DENY, "Resource": [{"Fn::Sub": "${Bucket.Arn}/*"}]}],
        [{**DENY, "Resource": [{"Fn::GetAtt": ["Other", "Arn"]}, {"Fn::Sub": "${Other.Arn}/*"}]}],
    ],
    ids=["no-policy", "no-statement", "allow", "secure-true", "one-action", "one-principal", "bucket-only",
         "objects-only", "other-bucket"],
)
def test_a_bucket_without_a_complete_tls_deny_fails(statements):
    assert project_rule_ids(one_bucket(statements)) == ["E9102"]


def test_cfn_lint_command_fails_a_template_with_an_unprotected_bucket(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(one_bucket(None)))
    done = subprocess.run([str(CFN_LINT), "--append-rules", str(RULES), "--", str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "E9102 Bucket: add an AWS::S3::BucketPolicy denying s3:*" in done.stdout


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_every_template_passes_the_project_rules(path):
    assert project_rule_ids(decoded(path)) == []


@pytest.mark.parametrize("bucket", ["ArtifactsBucket", "LogsBucket", "DataBucket"])
def test_each_emr_bucket_is_protected_by_its_own_policy(bucket):
    template = decoded(ROOT / "infra" / "emr.yaml")
    broken = copy.deepcopy(template)
    del broken["Resources"][f"{bucket}Policy"]
    assert project_rule_ids(broken) == ["E9102"]
