"""infra/emr.yaml: passes cfn-lint, and its names and permissions are the ones the EMR delivery uses."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cfnlint.decode import decode_str

from advising.emr.launch import SERVERLESS_ROLE_NAME
from advising.emr.settings import EmrSettings

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "infra" / "emr.yaml"


def template() -> dict:
    decoded, errors = decode_str(TEMPLATE.read_text())
    assert not errors, errors
    return decoded


def test_cfn_lint_passes():
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--append-rules", str(ROOT / "infra" / "rules"), "--", str(TEMPLATE)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_names_match_the_settings_defaults():
    t = template()
    defaults = EmrSettings()
    resources, params = t["Resources"], t["Parameters"]
    assert resources["EmrServiceRole"]["Properties"]["RoleName"] == defaults.service_role
    assert resources["EmrInstanceProfile"]["Properties"]["InstanceProfileName"] == defaults.instance_profile
    assert resources["ServerlessJobRole"]["Properties"]["RoleName"] == SERVERLESS_ROLE_NAME
    assert params["ArtifactsBucketName"]["Default"] == defaults.bucket
    assert defaults.log_uri == f"s3://{params['LogsBucketName']['Default']}/emr/"
    assert defaults.input_root.startswith(f"s3://{params['DataBucketName']['Default']}/")
    assert defaults.output_root.startswith(f"s3://{params['DataBucketName']['Default']}/")
    rules = resources["LogsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules[0]["ExpirationInDays"] == {"Ref": "LogRetentionDays"}


def test_iam_is_least_privilege():
    t = template()
    statements = []
    for resource in t["Resources"].values():
        props = resource.get("Properties", {})
        if "PolicyDocument" in props:
            statements += props["PolicyDocument"]["Statement"]
        for policy in props.get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    assert statements
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), statement
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for target in targets:
            assert target != "*", statement
    passrole = t["Resources"]["EmrServiceRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert passrole["Resource"] == {"Fn::GetAtt": ["EmrInstanceRole", "Arn"]}
