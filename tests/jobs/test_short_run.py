"""A short run's JIT: jobs.pipeline.is_short_run decides from the local files before the JVM starts, and
jobs.session.get_session starts that JVM with C1 only (SHORT_RUN_JIT)."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import jobs.pipeline as pipeline
from advising.sample_data import generate
from common.errors import UsageError
from jobs.config import RunConfig
from jobs.pipeline import is_short_run, run_pipeline
from jobs.session import SHORT_RUN_JIT
from tests.conftest import spark_child_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_log(tmp_path_factory):
    root = tmp_path_factory.mktemp("short-run-log")
    generate(root, appointments=300, seed=3, days=6, force=True)
    return root


def _log_files(root: Path):
    return sorted(p for p in (root / "appointments").rglob("*") if p.is_file())


def _days(root: Path):
    return sorted(folder.name.split("=", 1)[1] for folder in (root / "appointments").iterdir())


def test_a_full_run_is_short_when_its_whole_log_is_small(small_log, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISING_STORAGE", "hadoop")  # decided through `os` all the same: no JVM needed
    log_bytes = sum(p.stat().st_size for p in _log_files(small_log))
    config = RunConfig(input=str(small_log), output=str(tmp_path / "out"))
    monkeypatch.setattr(pipeline, "SHORT_RUN_LOG_BYTES", log_bytes)
    assert is_short_run(config)
    monkeypatch.setattr(pipeline, "SHORT_RUN_LOG_BYTES", log_bytes - 1)
    assert not is_short_run(config)


def test_paths_that_are_not_local_get_the_default_jit_and_misuse_fails_before_any_jvm(small_log, tmp_path):
    assert not is_short_run(RunConfig(input="s3://bucket/input", output=str(tmp_path / "out")))
    assert not is_short_run(RunConfig(input=str(small_log), output="s3://bucket/out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="appointments"):
        is_short_run(RunConfig(input=str(tmp_path / "empty"), output=str(tmp_path / "out")))


@pytest.mark.slow
def test_a_night_is_short_when_its_new_files_and_the_state_are_small(spark, small_log, tmp_path, monkeypatch):
    days = _days(small_log)
    history, night = days[-2], days[-1]
    out = tmp_path / "out"
    run_pipeline(spark, RunConfig(input=str(small_log), output=str(out), as_of=dt.date.fromisoformat(history), skip_quality=True),
                 log=lambda *_: None)
    new_bytes = sum(p.stat().st_size for p in _log_files(small_log) if f"ingest_date={night}" in str(p))
    log_bytes = sum(p.stat().st_size for p in _log_files(small_log))
    assert 0 < new_bytes < log_bytes
    nightly = RunConfig(input=str(small_log), output=str(out), as_of=dt.date.fromisoformat(night))
    # Between the night's new files and the whole log: a night reads only its new files, a --full run all of them.
    monkeypatch.setattr(pipeline, "SHORT_RUN_LOG_BYTES", new_bytes)
    assert is_short_run(nightly)
    assert not is_short_run(RunConfig(input=str(small_log), output=str(out), as_of=dt.date.fromisoformat(night), full=True))
    # The state a night scans for old winners counts too.
    monkeypatch.setattr(pipeline, "SHORT_RUN_STATE_BYTES", 0)
    assert not is_short_run(nightly)


@pytest.mark.slow
def test_a_short_run_jvm_compiles_with_c1_only(spark):
    # The suite's own session is a default one: tiered compilation.
    assert SHORT_RUN_JIT not in _jvm_arguments(spark)
    child = (
        "from jobs.session import get_session; from tests.jobs.test_short_run import _jvm_arguments; "
        "print(_jvm_arguments(get_session('jit-check', short_run=True)))"
    )
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, env=spark_child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert SHORT_RUN_JIT in done.stdout


def _jvm_arguments(spark) -> str:
    """The options the session's JVM was started with."""
    return str(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments().toString())
