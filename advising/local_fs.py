"""`advising local-fs`: the jar of the local file system local Spark JVMs write with (run by `make setup`).

Hadoop's local file system, without Hadoop's native library (pyspark ships none), sets the permission of every
file and folder it creates by starting a `chmod` process: each Parquet file, its checksum file and each new
partition folder, about 1,100 processes in a full run of the pipeline, which made writing a date-partitioned table
cost about 20 ms per partition. advising/java/NoForkLocalFileSystem.java sets the same permissions through the
JDK; this command compiles it against the installed pyspark's Hadoop and keeps the jar where jobs.session finds
it. It needs a JDK's `javac`; without it (a JRE only) local runs use Hadoop's own file system: the same files,
slower to write. A cluster (EMR) writes to S3 and never uses it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import zipfile

from common.errors import UsageError

# What both of the command's errors add: the jar is an optimisation.
_OPTIONAL = "local runs work without it, only slower to write files"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "java", "NoForkLocalFileSystem.java")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "local-fs",
        help="build the local file system jar that makes local Spark runs write files faster (make setup runs it)",
        description="Compile the local file system that sets file permissions without starting a process, for "
        "local Spark sessions.",
    )
    parser.set_defaults(func=_build)


def _javac(java: str) -> str:
    """The `javac` of the JDK the given `java` belongs to, else the one on PATH."""
    beside = os.path.join(os.path.dirname(os.path.realpath(java)), "javac")
    found = beside if os.path.isfile(beside) else shutil.which("javac")
    if not found:
        raise UsageError(f"could not build the local file system jar (no javac: install a JDK, e.g. openjdk-17-jdk-headless); {_OPTIONAL}")
    return found


def _build(args: argparse.Namespace) -> int:
    import pyspark

    from jobs.session import check_java, local_fs_jar

    javac = _javac(check_java())
    target = local_fs_jar()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    jars = os.path.join(os.path.dirname(pyspark.__file__), "jars", "*")
    with tempfile.TemporaryDirectory(prefix="advising-local-fs-") as work:
        done = subprocess.run([javac, "--release", "8", "-nowarn", "-cp", jars, "-d", work, SOURCE], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
            raise UsageError(f"could not build the local file system jar ({last}); {_OPTIONAL}")
        partial = f"{target}.{os.getpid()}.partial"
        with zipfile.ZipFile(partial, "w") as jar:
            for folder, _, names in os.walk(work):
                for name in sorted(names):
                    path = os.path.join(folder, name)
                    jar.write(path, os.path.relpath(path, work))
    os.replace(partial, target)  # a session starting meanwhile sees the old jar or the new one, never a part
    print(f"local file system: {target}")
    return 0
