"""The local file system local Spark JVMs write with (advising.local_fs, built by `make setup`)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from advising.local_fs import _javac
from common.errors import UsageError
from jobs.session import LOCAL_FS_CLASS, local_fs_jar, local_fs_settings
from tests.conftest import spark_child_env

ROOT = Path(__file__).resolve().parents[2]

# A partitioned write in a fresh local session: what the pipeline's tables do (a file and a checksum file per
# partition folder, the folders themselves, the committer's temporary folders).
_WRITE = """
import sys
from jobs.session import get_session
extra = {"spark.hadoop.fs.file.impl": sys.argv[2]} if len(sys.argv) > 2 else {}
spark = get_session("local-fs-check", extra=extra)
print("file system", spark.sparkContext._jsc.hadoopConfiguration().get("fs.file.impl"))
spark.range(40).selectExpr("id", "id % 4 AS day").write.partitionBy("day").parquet(sys.argv[1])
"""


def test_a_local_session_uses_the_jar_only_when_it_was_built(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert local_fs_settings() == {}  # none built: Hadoop's own local file system

    jar = tmp_path / "share" / "advising" / "local-fs.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"jar")
    assert local_fs_jar() == str(jar)
    assert local_fs_settings() == {"spark.driver.extraClassPath": str(jar), "spark.hadoop.fs.file.impl": LOCAL_FS_CLASS}


def test_without_a_jdk_the_build_fails_in_one_line_that_says_runs_work_without_it(tmp_path, monkeypatch):
    java = tmp_path / "jre" / "bin" / "java"  # a JRE: no javac beside java, none on PATH
    java.parent.mkdir(parents=True)
    java.write_text("")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match=r"no javac: install a JDK.*local runs work without it") as raised:
        _javac(str(java))
    assert "\n" not in str(raised.value)


def _write_counting_chmod(tmp_path: Path, *file_system: str):
    """Runs _WRITE in a fresh Python and JVM whose PATH starts with a `chmod` that records each call, then runs
    the real one. Returns (the output folder, the recorded calls, the file system the session used)."""
    bin_dir, calls, out = tmp_path / "bin", tmp_path / "chmod-calls.txt", tmp_path / "table"
    bin_dir.mkdir(parents=True)
    chmod = bin_dir / "chmod"
    chmod.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec /bin/chmod "$@"\n')
    chmod.chmod(0o755)
    env = spark_child_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [sys.executable, "-c", _WRITE, str(out), *file_system], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    used = done.stdout.split("file system ", 1)[1].split()[0]
    return out, calls.read_text().splitlines() if calls.exists() else [], used


def _modes(root: Path):
    """Every file's and folder's permission bits under root, by kind."""
    files = {stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}
    folders = {stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")] if p.is_dir()}
    return files, folders


def _layout(root: Path):
    """The folders and files under root, each file named up to its random part (part-<n>-<uuid>...)."""
    return sorted(str(p.relative_to(root)).split("part-")[0] for p in root.rglob("*"))


@pytest.mark.slow
def test_the_jar_setup_built_writes_the_same_files_without_starting_chmod(tmp_path):
    assert os.path.isfile(local_fs_jar()), f"no jar at {local_fs_jar()}: `make setup` builds it (advising local-fs)"
    old_umask = os.umask(0o022)  # the child inherits it: files 0644, folders 0755 with either file system
    try:
        hadoop_out, hadoop_calls, hadoop_fs = _write_counting_chmod(tmp_path / "hadoop", "org.apache.hadoop.fs.LocalFileSystem")
        ours_out, ours_calls, ours_fs = _write_counting_chmod(tmp_path / "ours")
    finally:
        os.umask(old_umask)
    # The control: Hadoop's own file system starts chmod for what it creates, and the recorder sees it.
    assert hadoop_fs == "org.apache.hadoop.fs.LocalFileSystem" and len(hadoop_calls) >= 8, hadoop_calls
    assert ours_fs == LOCAL_FS_CLASS
    assert ours_calls == []
    assert _modes(ours_out) == _modes(hadoop_out) == ({0o644}, {0o755})
    assert _layout(ours_out) == _layout(hadoop_out)
