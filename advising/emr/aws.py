"""boto3 access for the EMR delivery: clients, S3 URIs, and AWS failures reported as one line.

boto3 honours AWS_ENDPOINT_URL, so the same code talks to a local moto server in tests.
"""
from __future__ import annotations

from contextlib import contextmanager

from common.errors import UsageError


def client(service: str, region: str):
    import boto3

    return boto3.client(service, region_name=region)


def split_s3_uri(uri: str) -> tuple:
    """s3://bucket/key -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise UsageError(f"expected an s3:// URI, got {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise UsageError(f"no bucket in {uri!r}")
    return bucket, key


@contextmanager
def aws_errors(action: str):
    """Turn credential, permission and missing-resource failures into one-line UsageErrors."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise UsageError(f"{action} failed: {error.get('Code', 'error')}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise UsageError(f"{action} failed: {exc}") from None
