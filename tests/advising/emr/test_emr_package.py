"""`advising emr package` against moto over HTTP: uploads once, then is a no-op; refuses to rewrite a version."""
from __future__ import annotations

import json
import re

import boto3

from advising.emr.package import artifact_version

PREFIX = "advising/0.1.0-test/"


def keys(bucket):
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=PREFIX).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listing}


def test_package_uploads_then_is_a_no_op(cli, artifacts_bucket):
    code, out, err = cli("emr", "package", "--artifact-version", "0.1.0-test")
    assert code == 0, err
    assert "s3://advising-emr-artifacts/advising/0.1.0-test/ uploaded" in out
    uploaded = keys(artifacts_bucket)
    assert sorted(k[len(PREFIX):] for k in uploaded) == sorted(
        ["jobs.zip", "main.py", "requirements.txt", "install-requirements.sh", "cluster-configuration.json", "manifest.json"]
    )
    manifest = json.loads(boto3.client("s3").get_object(Bucket=artifacts_bucket, Key=PREFIX + "manifest.json")["Body"].read())
    assert manifest["version"] == "0.1.0-test" and set(manifest["files"]) == {k[len(PREFIX):] for k in uploaded} - {"manifest.json"}

    code, out, err = cli("emr", "package", "--artifact-version", "0.1.0-test")
    assert code == 0, err
    assert "already uploaded, unchanged" in out
    assert keys(artifacts_bucket) == uploaded


def test_other_content_under_the_same_version_is_refused(cli, artifacts_bucket):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=artifacts_bucket, Key=PREFIX + "manifest.json",
                  Body=json.dumps({"version": "0.1.0-test", "files": {"jobs.zip": "0" * 64}}).encode())
    code, out, err = cli("emr", "package", "--artifact-version", "0.1.0-test")
    assert code == 2
    assert err.count("\n") == 1 and "already uploaded with different content" in err
    assert set(keys(artifacts_bucket)) == {PREFIX + "manifest.json"}


def test_missing_bucket_is_one_line(cli, aws_env):
    code, out, err = cli("emr", "package", "--artifact-version", "v", "--set", "bucket=no-such-bucket")
    assert code == 2
    assert err.count("\n") == 1 and "NoSuchBucket" in err


def test_default_version_is_package_version_and_commit():
    assert re.fullmatch(r"\d+\.\d+\.\d+-[0-9a-f]{12}(-dirty)?", artifact_version())
