"""The SparkSession every entry point uses, with the settings the data contract depends on.

On a cluster (spark-submit on EMR) the master and resources come from spark-submit and the cluster's
spark-defaults; here we only set what correctness needs, plus sane local-mode defaults.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional

from common.errors import UsageError

# Settings the contract relies on, whatever the cluster's defaults say.
CONTRACT_SETTINGS = {
    # Local dates are computed explicitly with the campus zone; everything else is UTC.
    "spark.sql.session.timeZone": "UTC",
    # Contract section 4: TIMESTAMP(MICROS, isAdjustedToUTC=true), never INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Malformed timestamps must become null (then quarantine), not raise an upgrade exception.
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.ansi.enabled": "false",
    # A field of the wrong JSON type nulls only that field, so it can be reported precisely.
    "spark.sql.json.enablePartialResults": "true",
    "spark.sql.adaptive.enabled": "true",
    # The pipeline counts rows with observe() on its writes; AQE would replace an empty stage, its
    # metrics with it, by an empty relation, and the count would never arrive.
    "spark.sql.adaptive.optimizer.excludedRules": "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation",
}

LOCAL_SETTINGS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    # Beyond this many paths Spark lists files with a job of its own, which pays on a cluster over S3 but
    # in local mode only adds a job (about a second) to every read of the change log or a table.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    # The executor is this very JVM: a task's OutOfMemoryError must fail the job (which the pipeline
    # reports in one line and cleans up after), not exit the JVM under the Python driver.
    "spark.executor.killOnFatalError.depth": "0",
    "spark.sql.warehouse.dir": os.path.join(os.environ.get("TMPDIR", "/tmp"), "advising-spark-warehouse"),
}

# Local mode runs every task inside the driver JVM, so the driver gets this share of the machine's memory
# (the rest is for the Python workers, the page cache and the OS), never less than MIN_DRIVER_MEMORY_MB.
LOCAL_MEMORY_SHARE = 0.5
MIN_DRIVER_MEMORY_MB = 1024
# Shuffle partitions per byte of (gzip) change log in scope: a task's share of a shuffle stays about
# the same as the log grows (about 60 MB of decompressed lines), instead of a fixed count whose tasks
# grow until one no longer fits. AQE coalesces what turns out small.
INPUT_BYTES_PER_PARTITION = 16 * 1024 * 1024

JAVA_HINT = "Java 17 is required to run Spark: install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


def check_java() -> str:
    """The `java` Spark will start (JAVA_HOME's, else the one on PATH); fails with one line, not a py4j stack
    trace, when no JVM can be started."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise UsageError(JAVA_HINT)
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        raise UsageError(JAVA_HINT) from None
    return java


# Set only by `advising class-archive` on the local run it trains with: that JVM writes its loaded classes here.
CLASS_ARCHIVE_DUMP_ENV = "ADVISING_CLASS_ARCHIVE_DUMP"


def class_archive() -> str:
    """Where `advising class-archive` (run by `make setup`) keeps the class archive local Spark JVMs start from:
    beside the installed pyspark, whose jars it was made from."""
    return os.path.join(sys.prefix, "share", "advising", "spark-classes.jsa")


def class_archive_options() -> List[str]:
    """JVM options for a local Spark JVM's start. A fresh JVM loads, verifies and links thousands of Spark and
    Hadoop classes before and during its first queries (about 3 s of a run here); a dynamic class-data-sharing
    archive (JDK 17's AppCDS) maps them ready-made. An archive that does not match this JVM or class path is
    ignored by the JVM (then the classes load as usual); its messages are off either way."""
    dump, archive = os.environ.get(CLASS_ARCHIVE_DUMP_ENV), class_archive()
    if dump:
        option = f"-XX:ArchiveClassesAtExit={dump}"
    elif os.path.isfile(archive):
        option = f"-XX:SharedArchiveFile={archive}"
    else:
        return []
    return [option, "-Xlog:cds*=off"]


# The class `advising local-fs` compiles from advising/java/NoForkLocalFileSystem.java.
LOCAL_FS_CLASS = "advising.hadoop.NoForkLocalFileSystem"


def local_fs_jar() -> str:
    """Where `advising local-fs` (run by `make setup`) keeps the jar of the local file system local Spark JVMs use:
    beside the class archive."""
    return os.path.join(os.path.dirname(class_archive()), "local-fs.jar")


def local_fs_settings() -> Dict[str, str]:
    """Settings for a local Spark session's file: paths. Without Hadoop's native library, Hadoop's local file
    system starts a `chmod` process for every file and folder it creates (about 1,100 in a 200k full run, a few
    milliseconds each: most of what a date-partitioned write cost); the jar's file system sets the same
    permissions through the JDK. None without the jar (then Hadoop's own is used: same files, slower to write)."""
    jar = local_fs_jar()
    if not os.path.isfile(jar):
        return {}
    return {"spark.driver.extraClassPath": jar, "spark.hadoop.fs.file.impl": LOCAL_FS_CLASS}


def local_jvm(spark):
    """The process of the JVM pyspark started for a local session (subprocess.Popen), or None under spark-submit,
    whose JVM is not ours. Private to pyspark (its gateway's `proc`), hence read here only."""
    return getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)


# A short run's JIT (get_session's short_run): the C1 compiler only. A run that reads little is mostly a fresh JVM
# compiling Spark's code, and on two cores HotSpot's C2 compiler thread competes with the tasks for the whole run
# (three quarters of a core) to make code that runs only seconds: a 200k night 23.5-25.0 -> 17.7-17.9 s, a 1M
# night 29.4-30.9 -> 25.5-25.8 s. Where the tasks' work dominates C2 pays: a 1M full run took 116.7 s with C1 only
# against 89.5 s (docs/performance.md, round 12).
SHORT_RUN_JIT = "-XX:TieredStopAtLevel=1"


def quiet_logging_options() -> str:
    """Driver JVM options that load the shipped jobs/log4j2.properties (Spark, Hadoop: ERROR and up only).

    A local spark-submit of the bundle points the same option at the copy inside jobs.zip (README)."""
    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
    return f"-Dlog4j2.configurationFile=file:{config}"


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def local_driver_memory(machine_bytes: int) -> str:
    """The local driver's heap for a machine with this much memory (LOCAL_MEMORY_SHARE of it)."""
    return f"{max(MIN_DRIVER_MEMORY_MB, int(machine_bytes * LOCAL_MEMORY_SHARE) // (1024 * 1024))}m"


def shuffle_partitions(input_bytes: int, parallelism: int) -> int:
    """Partitions for a shuffle of `input_bytes` (compressed: gzip change log or Parquet): one per
    INPUT_BYTES_PER_PARTITION, and at least one per core."""
    return max(parallelism, math.ceil(input_bytes / INPUT_BYTES_PER_PARTITION))


def shuffle_settings(input_bytes: int, parallelism: int) -> Dict[str, str]:
    """Shuffle partitioning for a run over `input_bytes` of change log (shuffle_partitions). Set by the job
    itself from its own input listing, so a local run and an EMR step make the same choice."""
    partitions = str(shuffle_partitions(input_bytes, parallelism))
    return {"spark.sql.shuffle.partitions": partitions, "spark.sql.adaptive.coalescePartitions.initialPartitionNum": partitions}


def get_session(
    app_name: str = "advising-pipeline",
    master: Optional[str] = None,
    extra: Optional[dict] = None,
    driver_memory: Optional[str] = None,
    quiet: bool = True,
    short_run: bool = False,
):
    """The active session if there is one (spark-submit, tests), else a new local one. `driver_memory`
    (a JVM size such as 8g) and `short_run` (the JVM compiles with C1 only, SHORT_RUN_JIT: for a run that reads
    little, jobs.pipeline.is_short_run) only apply when this call starts the JVM: a local run; under spark-submit
    the driver's memory and options are spark-submit's.

    A new local session is quiet unless `quiet=False` (issue 14): only the pipeline's own lines are
    printed. Under spark-submit the JVM already runs with the submitter's logging (on EMR, the cluster's),
    which is left alone."""
    import logging

    from pyspark.sql import SparkSession

    # py4j logs connection chatter on the Python side; at ERROR only real failures get through.
    logging.getLogger("py4j").setLevel(logging.ERROR if quiet else logging.WARNING)

    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in CONTRACT_SETTINGS.items():
            active.conf.set(key, value)
        keep_jvm_classes(active)
        return active
    # spark-submit launches the Python driver with a JVM gateway already running; its master wins.
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    builder = SparkSession.builder.appName(app_name)
    if master or not under_submit:
        check_java()
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.master(master or "local[*]")
        for key, value in {**LOCAL_SETTINGS, **local_fs_settings()}.items():
            builder = builder.config(key, value)
        java_options = ([quiet_logging_options()] if quiet else []) + class_archive_options() + ([SHORT_RUN_JIT] if short_run else [])
        if java_options:
            builder = builder.config("spark.driver.extraJavaOptions", " ".join(java_options))
        # Read by the JVM at start-up only, hence here and nowhere later.
        builder = builder.config("spark.driver.memory", driver_memory or local_driver_memory(machine_memory_bytes()))
    for key, value in {**CONTRACT_SETTINGS, **(extra or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if master or not under_submit:
        spark.sparkContext.setLogLevel("ERROR" if quiet else "WARN")
    keep_jvm_classes(spark)
    return spark


# The names pyspark looks up on its JVM view most (a 1M night: `functions` 1,451 times, once per `F.col`, `F.lit`,
# ...; `PythonUtils` 211, `SparkSession` and `SparkSession$` 268, `py4j` 108 of 2,402 lookups).
JVM_VIEW_NAMES = ("functions", "PythonUtils", "SparkSession", "SparkSession$", "py4j")


def keep_jvm_classes(spark) -> None:
    """Resolve JVM_VIEW_NAMES once and keep them on the session's JVM view. py4j resolves a name on the view
    afresh at each use, in the JVM: it tries it as a class by itself and in each package pyspark imported, and
    every miss searches all of Spark's jars (252 here) and throws: 0.45 ms of JVM CPU for each `F.col`, against
    0.07 ms for a kept one (4,000 calls: 2.2 -> 0.6 s). A kept name is the same JavaClass or JavaPackage py4j
    returns; the view belongs to this JVM's gateway, so a new JVM starts with a new view."""
    jvm = spark.sparkContext._jvm
    for name in JVM_VIEW_NAMES:
        setattr(jvm, name, getattr(jvm, name))
