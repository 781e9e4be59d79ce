"""cfn-lint rule (load with `cfn-lint --append-rules infra/rules`): a Lambda that consumes a DynamoDB
stream keeps the settings that make the sink lossless and bounded.

Plain cfn-lint accepts an event source mapping without them (they are optional in the resource
schema), yet without them one poison record blocks its shard for up to 24 hours and then its
changes vanish silently. Only mappings whose EventSourceArn is a DynamoDB stream are checked, so
SQS or Kinesis mappings in other templates are unaffected.
"""
from cfnlint.rules import CloudFormationLintRule, RuleMatch

STREAM_TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")


def _getatt(value):
    """`(resource, attribute)` of a Fn::GetAtt in either form, else None."""
    if isinstance(value, dict) and len(value) == 1 and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if isinstance(target, list) and len(target) == 2:
            return target[0], target[1]
    return None


def _reads_dynamodb_stream(arn, resources):
    getatt = _getatt(arn)
    if getatt:
        name, attribute = getatt
        return attribute == "StreamArn" and resources.get(name, {}).get("Type") in STREAM_TABLE_TYPES
    return isinstance(arn, str) and ":dynamodb:" in arn and "/stream/" in arn


def _function_resource(reference, resources):
    """The logical name of the AWS::Lambda::Function a FunctionName points at, through aliases and versions."""
    for _ in range(3):
        if isinstance(reference, dict) and "Ref" in reference:
            name = reference["Ref"]
        elif _getatt(reference):
            name = _getatt(reference)[0]
        else:
            return None
        resource = resources.get(name, {})
        if resource.get("Type") == "AWS::Lambda::Function":
            return name
        if resource.get("Type") not in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            return None
        reference = resource.get("Properties", {}).get("FunctionName")
    return None


class StreamSinkSettings(CloudFormationLintRule):
    id = "E9101"
    shortdesc = "DynamoDB stream consumers must bound retries and keep failed ranges"
    description = (
        "An AWS::Lambda::EventSourceMapping reading a DynamoDB stream needs BisectBatchOnFunctionError: true, "
        "MaximumRetryAttempts, MaximumRecordAgeInSeconds, FunctionResponseTypes [ReportBatchItemFailures] and "
        "DestinationConfig.OnFailure.Destination; its function needs ReservedConcurrentExecutions."
    )
    source_url = "https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html"
    tags = ["resources", "lambda", "dynamodb", "stream-sink"]

    def match(self, cfn):
        matches = []
        resources = cfn.get_resources()
        for name, mapping in cfn.get_resources(["AWS::Lambda::EventSourceMapping"]).items():
            properties = mapping.get("Properties", {})
            if not isinstance(properties, dict) or not _reads_dynamodb_stream(properties.get("EventSourceArn"), resources):
                continue
            path = ["Resources", name, "Properties"]
            if properties.get("BisectBatchOnFunctionError") not in (True, "true", "True"):
                matches.append(RuleMatch(path, f"{name}: set BisectBatchOnFunctionError: true to isolate a poison record"))
            for required in ("MaximumRetryAttempts", "MaximumRecordAgeInSeconds"):
                if required not in properties:
                    matches.append(RuleMatch(path, f"{name}: set {required}; the default retries a failing batch until the record expires"))
            if "ReportBatchItemFailures" not in (properties.get("FunctionResponseTypes") or []):
                matches.append(RuleMatch(path, f"{name}: FunctionResponseTypes must include ReportBatchItemFailures"))
            on_failure = (properties.get("DestinationConfig") or {}).get("OnFailure") or {}
            if not on_failure.get("Destination"):
                matches.append(RuleMatch(path, f"{name}: set DestinationConfig.OnFailure.Destination so a discarded batch is recorded"))
            function = _function_resource(properties.get("FunctionName"), resources)
            if function and "ReservedConcurrentExecutions" not in resources[function].get("Properties", {}):
                matches.append(
                    RuleMatch(
                        ["Resources", function, "Properties"],
                        f"{function}: set ReservedConcurrentExecutions; it consumes the DynamoDB stream of {name}",
                    )
                )
        return matches
