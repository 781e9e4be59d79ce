"""jobs.session.keep_jvm_classes: the names pyspark looks up on its JVM view most are resolved once per JVM,
not in the JVM at every use."""
from __future__ import annotations

from py4j import protocol
from py4j.java_gateway import JavaPackage
from pyspark.sql import functions as F

from jobs.session import JVM_VIEW_NAMES

# py4j's command that asks the JVM what a name on the view is (a class by itself or in an imported package).
RESOLVE = protocol.REFLECTION_COMMAND_NAME + protocol.REFL_GET_UNKNOWN_SUB_COMMAND_NAME


def test_the_session_keeps_the_classes_pyspark_looks_up_most(spark):
    kept = vars(spark.sparkContext._jvm)
    assert set(JVM_VIEW_NAMES) <= set(kept)
    assert kept["functions"]._fqn == "org.apache.spark.sql.functions"
    assert kept["PythonUtils"]._fqn == "org.apache.spark.api.python.PythonUtils"
    assert kept["SparkSession"]._fqn == "org.apache.spark.sql.SparkSession"
    assert kept["SparkSession$"]._fqn == "org.apache.spark.sql.SparkSession$"
    assert isinstance(kept["py4j"], JavaPackage)


def test_building_columns_resolves_no_name_in_the_jvm(spark, monkeypatch):
    client = spark.sparkContext._jvm._gateway_client
    sent = []
    send = client.send_command
    monkeypatch.setattr(client, "send_command", lambda command, *args, **kwargs: sent.append(command) or send(command, *args, **kwargs))

    column = F.when(F.col("status") == "CANCELLED", F.lit(1)).otherwise(F.lit(0))

    assert str(column) == "Column<'CASE WHEN (status = CANCELLED) THEN 1 ELSE 0 END'>"
    assert sent  # the functions were called in the JVM, through this client
    assert [command for command in sent if command.startswith(RESOLVE)] == []
