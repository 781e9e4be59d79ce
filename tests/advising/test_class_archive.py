"""The class archive local Spark JVMs start from (advising.class_archive, built by `make setup`)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.session import CLASS_ARCHIVE_DUMP_ENV, class_archive, class_archive_options
from tests.conftest import spark_child_env

ROOT = Path(__file__).resolve().parents[2]


def test_a_local_jvm_maps_the_archive_or_dumps_one_when_training(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.delenv(CLASS_ARCHIVE_DUMP_ENV, raising=False)
    assert class_archive_options() == []  # none built: classes load as usual

    archive = tmp_path / "share" / "advising" / "spark-classes.jsa"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"archive")
    assert class_archive() == str(archive)
    assert class_archive_options() == [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds*=off"]

    monkeypatch.setenv(CLASS_ARCHIVE_DUMP_ENV, str(tmp_path / "new.jsa"))
    assert class_archive_options() == [f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}", "-Xlog:cds*=off"]


@pytest.mark.slow
def test_the_archive_setup_built_matches_this_jvm_and_pyspark():
    """-Xshare:on turns "the archive cannot be used" (another JVM build, another class path) from a silent
    fallback into a JVM that does not start, so this session runs a query only if the archive is really mapped."""
    assert os.path.isfile(class_archive()), f"no class archive at {class_archive()}: `make setup` builds it (advising class-archive)"
    env = spark_child_env(JDK_JAVA_OPTIONS="-Xshare:on")
    env.pop(CLASS_ARCHIVE_DUMP_ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", "from jobs.session import get_session; print('rows', get_session('archive-check').range(3).count())"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0 and "rows 3" in done.stdout, done.stderr[-3000:]
