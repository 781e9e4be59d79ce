"""The SparkSession every entry point uses, with the settings the data contract depends on.

On a cluster (spark-submit on EMR) the master and resources come from spark-submit and the cluster's
spark-defaults; here we only set what correctness needs, plus sane local-mode defaults.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Optional

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
}

LOCAL_SETTINGS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "4g",
    "spark.sql.warehouse.dir": os.path.join(os.environ.get("TMPDIR", "/tmp"), "advising-spark-warehouse"),
}

JAVA_HINT = "Java 17 is required to run Spark: install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


def check_java() -> None:
    """Fail with one line, not a py4j stack trace, when no JVM can be started."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise UsageError(JAVA_HINT)
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        raise UsageError(JAVA_HINT) from None


def quiet_logging_options() -> str:
    """Driver JVM options that load the shipped jobs/log4j2.properties (Spark, Hadoop: ERROR and up only).

    A local spark-submit of the bundle points the same option at the copy inside jobs.zip (README)."""
    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
    return f"-Dlog4j2.configurationFile=file:{config}"


def get_session(
    app_name: str = "advising-pipeline", master: Optional[str] = None, extra: Optional[dict] = None, quiet: bool = True
):
    """The active session if there is one (spark-submit, tests), else a new local one.

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
        for key, value in LOCAL_SETTINGS.items():
            builder = builder.config(key, value)
        if quiet:
            builder = builder.config("spark.driver.extraJavaOptions", quiet_logging_options())
    for key, value in {**CONTRACT_SETTINGS, **(extra or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if master or not under_submit:
        spark.sparkContext.setLogLevel("ERROR" if quiet else "WARN")
    return spark
