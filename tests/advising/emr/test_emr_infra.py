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
        if statement["Effect"] == "Deny":  # the buckets' TLS-only statements deny everything on purpose
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, statement
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), statement
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for target in targets:
            assert target != "*", statement
    passrole = t["Resources"]["EmrServiceRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert passrole["Resource"] == {"Fn::GetAtt": ["EmrInstanceRole", "Arn"]}


def test_the_security_configuration_encrypts_local_disks_and_traffic_and_is_the_settings_default():
    t = template()
    resource = t["Resources"]["EmrSecurityConfiguration"]["Properties"]
    assert t["Parameters"]["SecurityConfigurationName"]["Default"] == EmrSettings().security_configuration
    assert resource["Name"] == {"Ref": "SecurityConfigurationName"}
    encryption = resource["SecurityConfiguration"]["EncryptionConfiguration"]
    assert encryption["EnableInTransitEncryption"] is True and encryption["EnableAtRestEncryption"] is True
    assert encryption["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]["CertificateProviderType"] == "PEM"
    local = encryption["AtRestEncryptionConfiguration"]["LocalDiskEncryptionConfiguration"]
    assert local == {"EncryptionKeyProviderType": "AwsKms", "AwsKmsKey": {"Fn::GetAtt": ["LocalDiskKey", "Arn"]},
                     "EnableEbsEncryption": True}


def test_failures_reach_the_alerts_topic():
    resources = template()["Resources"]
    emr_rule = resources["PipelineFailedRule"]["Properties"]
    assert emr_rule["EventPattern"]["detail"]["state"] == ["FAILED", "TERMINATED_WITH_ERRORS"]
    assert set(emr_rule["EventPattern"]["detail-type"]) == {"EMR Step Status Change", "EMR Cluster State Change"}
    for rule in ("PipelineFailedRule", "DagFailedRule"):
        assert resources[rule]["Properties"]["Targets"][0]["Arn"] == {"Ref": "AlertsTopic"}
    alarm = resources["NoSuccessfulRunAlarm"]["Properties"]
    assert alarm["TreatMissingData"] == "breaching" and alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert resources["AlertsEmailSubscription"]["Properties"]["Endpoint"] == {"Ref": "AlertEmail"}
