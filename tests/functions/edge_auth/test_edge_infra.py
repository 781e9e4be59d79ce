"""infra/edge-auth.yaml: cfn-lint clean, and wired the way Lambda@Edge and origin access control need."""
from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parents[3] / "infra" / "edge-auth.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    parsed, errors = decode(str(TEMPLATE))
    assert not errors
    return parsed


def resources_of_type(template: dict, kind: str) -> dict:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def test_cfn_lint_reports_nothing():
    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1"]))

    assert [str(match) for match in matches] == []


def test_cfn_lint_would_catch_a_broken_function():
    broken = TEMPLATE.read_text().replace("Runtime: python3.13", "Runtime: python2.6")

    matches = lint(broken, config=ManualArgs(regions=["us-east-1"]))

    assert any("python2.6" in str(match) for match in matches)


def test_viewer_request_association_uses_the_numbered_version(template):
    (distribution,) = resources_of_type(template, "AWS::CloudFront::Distribution").values()
    behavior = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    (version_name, version), = resources_of_type(template, "AWS::Lambda::Version").items()
    (function_name,) = resources_of_type(template, "AWS::Lambda::Function")

    assert behavior["LambdaFunctionAssociations"] == [
        {"EventType": "viewer-request", "IncludeBody": False, "LambdaFunctionARN": {"Ref": version_name}}
    ]
    assert version["Properties"]["FunctionName"] == {"Ref": function_name}
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]


def test_function_fits_lambda_at_edge(template):
    (function,) = resources_of_type(template, "AWS::Lambda::Function").values()
    props = function["Properties"]

    assert props["Runtime"] in ("python3.12", "python3.13")
    assert props["Handler"] == "edge_auth.handler.handler"
    assert "Environment" not in props and "Layers" not in props and "VpcConfig" not in props
    assert props["MemorySize"] <= 128 and props["Timeout"] <= 5
    assert template["Rules"]["EdgeFunctionsLiveInUsEast1"]["Assertions"][0]["Assert"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]
    }


def test_role_is_assumable_by_lambda_and_edge_and_only_writes_logs(template):
    (role,) = resources_of_type(template, "AWS::IAM::Role").values()
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]

    assert sorted(trust["Principal"]["Service"]) == ["edgelambda.amazonaws.com", "lambda.amazonaws.com"]
    assert "ManagedPolicyArns" not in role["Properties"]
    for statement in statements:
        assert all(action.startswith("logs:") for action in statement["Action"])
        assert "*" not in statement["Resource"]


def test_bucket_is_private_and_readable_only_by_this_distribution(template):
    (bucket_name, bucket), = resources_of_type(template, "AWS::S3::Bucket").items()
    (policy,) = resources_of_type(template, "AWS::S3::BucketPolicy").values()
    (distribution_name,) = resources_of_type(template, "AWS::CloudFront::Distribution")
    (oac_name,) = resources_of_type(template, "AWS::CloudFront::OriginAccessControl")
    distribution = template["Resources"][distribution_name]["Properties"]["DistributionConfig"]

    assert set(bucket["Properties"]["PublicAccessBlockConfiguration"].values()) == {True}
    assert "BucketEncryption" in bucket["Properties"]
    allow = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source_arn = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source_arn.endswith(f":distribution/${{{distribution_name}}}")
    (origin,) = distribution["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_name, "Id"]}
    assert origin["DomainName"] == {"Fn::GetAtt": [bucket_name, "RegionalDomainName"]}


def test_cache_key_holds_nothing_user_specific(template):
    (cache_policy,) = resources_of_type(template, "AWS::CloudFront::CachePolicy").values()
    params = cache_policy["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]

    assert params["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert params["CookiesConfig"] == {"CookieBehavior": "none"}
    assert params["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
