"""`advising versions` and `advising rollback` on an s3:// output, through boto3 to moto in server mode: what an
engineer runs from a workstation the morning after a bad night."""
import datetime as dt
import json
import os
from pathlib import Path

import boto3
import pytest

from advising.cli import main as cli
from advising.sample_data import generate
from jobs.config import RunConfig
from jobs.contract import TABLES
from jobs.pipeline import run_pipeline

pytestmark = pytest.mark.slow

BUCKET, PREFIX = "advising-data", "tables"


def upload(output: Path, s3) -> None:
    """What the EMR step leaves on S3: the versions and the pointer (no links: object stores have none)."""
    for here, _, names in os.walk(output):
        for name in names:
            path = Path(here) / name
            relative = path.relative_to(output).as_posix()
            if relative.startswith(("_versions/", "_current.json")) and not name.startswith("."):
                s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{relative}", Body=path.read_bytes())


def test_versions_and_rollback_on_s3_switch_the_pointer_and_the_catalog(spark, tmp_path, aws_env, capsys):
    source, output = tmp_path / "in", tmp_path / "out"
    generate(source, appointments=80, seed=2, days=4)
    day = sorted(p.name.split("=")[1] for p in (source / "appointments").iterdir())[1]
    first = run_pipeline(spark, RunConfig(input=str(source), output=str(output), as_of=dt.date.fromisoformat(day),
                                          skip_quality=True), log=lambda *_: None)
    second = run_pipeline(spark, RunConfig(input=str(source), output=str(output), skip_quality=True), log=lambda *_: None)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    upload(output, s3)
    root = f"s3://{BUCKET}/{PREFIX}"

    capsys.readouterr()
    assert cli(["versions", "--output", root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [first.run_id, second.run_id]
    assert lines[1].endswith("(current)") and not lines[0].endswith("(current)")

    assert cli(["rollback", "--output", root, "--to", first.run_id, "--catalog-database", "advising"]) == 0
    pointer = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/_current.json")["Body"].read())
    assert pointer["run_id"] == first.run_id and pointer["version"] == f"_versions/{first.run_id}"
    for name in TABLES:
        keys = {f"{PREFIX}/{f}" for f in pointer["tables"][name]}
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/_versions/{first.run_id}/{name}/")["Contents"]}
        assert keys and keys == {k for k in listed if not k.rsplit("/", 1)[1].startswith(("_", "."))}
        table = boto3.client("glue").get_table(DatabaseName="advising", Name=name)["Table"]
        assert table["StorageDescriptor"]["Location"] == f"{root}/_versions/{first.run_id}/{name}"
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/_lease.json").get("Contents")

    capsys.readouterr()
    assert cli(["rollback", "--output", root, "--to", "20200101T000000Z-gone00"]) == 2
    err = capsys.readouterr().err
    assert f"no kept version '20200101T000000Z-gone00' under {root} (kept: {first.run_id}, {second.run_id})" in err
    assert err.count("\n") == 1
