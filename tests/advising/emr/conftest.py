"""Fixtures for the EMR delivery tests: isolated settings sources, and the CLI run in-process."""
from __future__ import annotations

import pytest

from advising.cli import main


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch, tmp_path):
    """No developer config file or ADVISING_EMR_* variable leaks into a test."""
    import os

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in list(os.environ):
        if key.startswith("ADVISING_EMR_"):
            monkeypatch.delenv(key)


@pytest.fixture
def cli(capsys):
    """Run `advising ARGS...` in-process; returns (exit status, stdout, stderr)."""

    def run(*args: str):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse misuse
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def artifacts_bucket(aws_env):
    """The default artifacts bucket, created in moto."""
    import boto3

    from advising.emr.settings import EmrSettings

    bucket = EmrSettings().bucket
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket
