"""Misuse of `advising run` is answered in one line, exit 2, before any JVM starts.

The command runs as a subprocess whose JAVA_HOME is a stand-in `java` that only records that it was
called: Spark's launcher and our Java check both go through JAVA_HOME, so a JVM start leaves a mark.
The last test shows that mark does appear when the checks pass, so "no mark" means something.
How fast the answer comes is measured in bench/misuse_bench.py, not here.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from advising.sample_data import generate


@pytest.fixture
def fake_java(tmp_path):
    """A JAVA_HOME whose bin/java writes a mark and fails, like a JVM that could not start."""
    home = tmp_path / "java-home"
    (home / "bin").mkdir(parents=True)
    mark = tmp_path / "java-was-called"
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho \"$@\" >> '{mark}'\nexit 1\n")
    java.chmod(0o755)
    return home, mark


def advising(args, java_home, cwd):
    env = {**os.environ, "JAVA_HOME": str(java_home)}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("advising")), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )


@pytest.fixture
def layout(tmp_path):
    """An input root with an (empty) appointments/ folder, and one without it."""
    (tmp_path / "in" / "appointments").mkdir(parents=True)
    (tmp_path / "no-log" / "advisors").mkdir(parents=True)
    return tmp_path


IN, OUT = ["--input", "{tmp}/in"], ["--output", "{tmp}/out"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "{tmp}/missing", *OUT], "advising run: error: input path does not exist: {tmp}/missing"),
        (["--input", "file://{tmp}/missing", *OUT], "advising run: error: input path does not exist: file://{tmp}/missing"),
        (["--input", "{tmp}/no-log", *OUT], "advising run: error: no appointments/ folder under {tmp}/no-log: expected"),
        ([*IN, *OUT, "--as-of", "2026-02-30"], "advising run: error: --as-of is not a real calendar date: '2026-02-30'"),
        ([*IN, *OUT, "--as-of", "yesterday"], "advising run: error: --as-of must be a date in YYYY-MM-DD form, got 'yesterday'"),
        ([*IN, *OUT, "--timezone", "Mars/Olympus"], "advising run: error: unknown time zone 'Mars/Olympus'"),
        ([*IN, *OUT, "--timezone", "+02:00"], "advising run: error: --timezone must be an IANA time zone name"),
        ([*IN, *OUT, "--fulll"], "advising: error: unrecognized arguments: --fulll (see advising --help)"),
        ([*IN, *OUT, "--as-of"], "advising run: error: argument --as-of: expected one argument (see advising run --help)"),
        ([*IN], "advising run: error: the following arguments are required: --output (see advising run --help)"),
    ],
)
def test_misuse_is_one_line_exit_2_and_starts_no_jvm(layout, fake_java, argv, message):
    java_home, mark = fake_java

    done = advising(["run", *[part.replace("{tmp}", str(layout)) for part in argv]], java_home, layout)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message.replace("{tmp}", str(layout))) and done.stderr.count("\n") == 1, done.stderr
    assert not mark.exists(), "a JVM was started"
    assert not (layout / "out").exists()


def test_the_jvm_detector_sees_a_run_that_passes_the_checks(layout, fake_java):
    java_home, mark = fake_java
    generate(layout / "sample", appointments=5, seed=1, days=2)
    done = advising(["run", "--input", str(layout / "sample"), "--output", str(layout / "out")], java_home, layout)
    assert done.returncode == 2 and "Java 17 is required" in done.stderr
    assert mark.read_text().strip() == "-version"
