"""Fixtures of the stream sink tests: a raw bucket in moto with the sink's environment, and a fault proxy."""
from __future__ import annotations

import pytest
from stream_sink_support import FaultProxy

RAW_BUCKET = "advising-raw"


@pytest.fixture
def raw_bucket(aws_env, monkeypatch) -> str:
    """The change-log bucket, created in moto, with RAW_BUCKET / RAW_PREFIX set as the stack sets them."""
    import boto3

    boto3.client("s3").create_bucket(Bucket=RAW_BUCKET)
    monkeypatch.setenv("RAW_BUCKET", RAW_BUCKET)
    monkeypatch.setenv("RAW_PREFIX", "raw/")
    return RAW_BUCKET


@pytest.fixture
def fault_proxy(raw_bucket, aws_env, monkeypatch):
    """Points AWS_ENDPOINT_URL at a proxy to moto that can refuse chosen writes (set `proxy.deny`)."""
    with FaultProxy(aws_env) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        yield proxy
