"""cfn-lint rule (load with `cfn-lint --append-rules infra/rules`): every S3 bucket a template creates has a
bucket policy that denies requests made without TLS.

Plain cfn-lint accepts a bucket without any policy, and S3 then answers plain-HTTP requests; the data
bucket holds student data (issue 15, point 2). A bucket passes when an AWS::S3::BucketPolicy of the same
template names it (Ref, or its name) and holds a statement with Effect Deny, Principal "*", every S3 action
("s3:*"), both the bucket and its objects as resources, and the condition
Bool aws:SecureTransport "false".
"""
from cfnlint.rules import CloudFormationLintRule, RuleMatch


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _refers_to(value, name, bucket_name):
    """Whether a Bucket or Resource value names the bucket with logical id `name`."""
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Ref":
            return argument == name or (bucket_name is not None and argument == bucket_name.get("Ref"))
        if function == "Fn::GetAtt":
            target = argument.split(".", 1) if isinstance(argument, str) else argument
            return isinstance(target, list) and target[0] == name
        if function == "Fn::Sub":
            text = argument[0] if isinstance(argument, list) else argument
            return isinstance(text, str) and (f"${{{name}}}" in text or f"${{{name}.Arn}}" in text or
                                              (bucket_name is not None and f"${{{bucket_name.get('Ref')}}}" in text))
    return bucket_name is not None and value == bucket_name


def _is_object_resource(value):
    """A Resource entry that ends in /* (the bucket's objects)."""
    if isinstance(value, str):
        return value.endswith("/*")
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
        return isinstance(text, str) and text.endswith("/*")
    if isinstance(value, dict) and "Fn::Join" in value:
        parts = value["Fn::Join"][1] if isinstance(value["Fn::Join"], list) and len(value["Fn::Join"]) == 2 else []
        return bool(parts) and isinstance(parts[-1], str) and parts[-1].endswith("/*")
    return False


def _denies_insecure_transport(statement, name, bucket_name):
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    if statement.get("Principal") not in ("*", {"AWS": "*"}):
        return False
    if "s3:*" not in _as_list(statement.get("Action")):
        return False
    condition = (statement.get("Condition") or {}).get("Bool") or {}
    if str(condition.get("aws:SecureTransport")).lower() != "false":
        return False
    resources = [r for r in _as_list(statement.get("Resource")) if _refers_to(r, name, bucket_name)]
    return any(_is_object_resource(r) for r in resources) and any(not _is_object_resource(r) for r in resources)


class BucketsDenyInsecureTransport(CloudFormationLintRule):
    id = "E9102"
    shortdesc = "S3 buckets must deny requests without TLS"
    description = (
        "Every AWS::S3::Bucket needs an AWS::S3::BucketPolicy in the same template with a Deny statement for "
        "Principal '*', Action 's3:*' on the bucket and its objects when aws:SecureTransport is false."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html"
    tags = ["resources", "s3", "tls"]

    def match(self, cfn):
        matches = []
        policies = [p.get("Properties", {}) for p in cfn.get_resources(["AWS::S3::BucketPolicy"]).values()]
        for name, bucket in cfn.get_resources(["AWS::S3::Bucket"]).items():
            bucket_name = (bucket.get("Properties") or {}).get("BucketName")
            protected = any(
                _refers_to(policy.get("Bucket"), name, bucket_name)
                and any(_denies_insecure_transport(s, name, bucket_name)
                        for s in _as_list(((policy.get("PolicyDocument") or {}).get("Statement")) or []))
                for policy in policies
                if isinstance(policy, dict)
            )
            if not protected:
                matches.append(
                    RuleMatch(
                        ["Resources", name],
                        f"{name}: add an AWS::S3::BucketPolicy denying s3:* on the bucket and its objects "
                        "when aws:SecureTransport is false",
                    )
                )
        return matches
