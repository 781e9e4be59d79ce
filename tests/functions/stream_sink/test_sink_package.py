"""`advising sink build`: the zip runs in a clean interpreter that has only what the Lambda Python runtime
provides (the standard library, boto3 and its dependencies), against moto over HTTP."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
from stream_sink_support import lines_of, read_change_log, stream_record

from advising.cli import main as advising

# What the Lambda Python runtime ships besides the standard library: boto3 and what it imports.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

RUN_FROM_ZIP = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import functions.stream_sink.handler as module
event = json.loads(sys.stdin.read())
response = module.handler(event, None)
leaked = [name for name in ("pyspark", "advising", "jobs", "pytest") if name in sys.modules]
try:
    import pyspark  # noqa: F401
    importable = True
except ImportError:
    importable = False
print(json.dumps({"response": response, "file": module.__file__, "leaked": leaked, "pyspark_importable": importable}))
"""


def lambda_runtime(folder: Path) -> Path:
    """A folder holding only boto3 and its dependencies (linked from this environment, same pinned versions)."""
    folder.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (folder / source.name).symlink_to(source)
    return folder


def test_the_built_zip_runs_the_handler_in_a_clean_interpreter(raw_bucket, tmp_path, capsys):
    package = tmp_path / "stream-sink.zip"
    assert advising(["sink", "build", "--out", str(package)]) == 0
    assert "sink build: " in capsys.readouterr().out
    names = zipfile.ZipFile(package).namelist()
    assert "functions/stream_sink/handler.py" in names and "functions/stream_sink/backfill.py" not in names

    record = stream_record(10**21, "INSERT", "a-1", 1767600000, new={"appointment_id": "a-1", "photo": b"\x00\xff", "n": {1, 2}})
    env = {key: value for key, value in os.environ.items() if key.startswith(("AWS_", "RAW_"))}
    # -I: no user site, no PYTHON* variables, no script folder on the path; -S: no site-packages at all.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUN_FROM_ZIP, str(package), str(lambda_runtime(tmp_path / "runtime"))],
        input=json.dumps({"Records": [record]}), capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    *log, outcome = result.stdout.splitlines()
    report = json.loads(outcome)
    assert report["response"] == {"batchItemFailures": []}
    assert report["file"] == str(package / "functions" / "stream_sink" / "handler.py")
    assert report["leaked"] == [] and report["pyspark_importable"] is False
    assert json.loads(log[0])["event"] == "stream_sink_batch"
    (line,) = lines_of(read_change_log(boto3.client("s3"), raw_bucket))
    assert line["new_image"] == {"appointment_id": "a-1", "photo": "AP8=", "n": [1, 2]}


def test_the_build_is_reproducible(tmp_path):
    assert advising(["sink", "build", "--out", str(tmp_path / "a.zip")]) == 0
    assert advising(["sink", "build", "--out", str(tmp_path / "b.zip")]) == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
