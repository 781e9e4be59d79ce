"""The advisors dimension (advisors/*.csv): advisor_id -> department, daily capacity.

Read before any heavy work, because a duplicated advisor_id must stop the run before anything is
published (contract section 1).
"""
from __future__ import annotations

from typing import List, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.contract import ADVISORS_SCHEMA
from common.errors import UsageError


def read_advisors(spark: SparkSession, csv_paths: List[str]) -> Optional[DataFrame]:
    """RFC 4180 CSV files with a header row -> raw string columns; None when there is no file."""
    if not csv_paths:
        return None
    return (
        spark.read.option("header", True)
        .option("enforceSchema", False)  # the header must name the contract's columns, in order
        .option("multiLine", True)  # a quoted field may hold a line break
        .option("escape", '"')  # RFC 4180: a quote inside a quoted field is doubled
        .schema(ADVISORS_SCHEMA)
        .csv(csv_paths)
    )


def capacities(raw: DataFrame) -> DataFrame:
    """Raw dimension rows -> advisor_id, department, capacity_minutes (null unless a positive integer)."""
    text = F.col("daily_capacity_minutes")
    value = text.cast("long")
    return raw.select(
        "advisor_id",
        "department",
        F.when(text.rlike(r"^[0-9]+$") & (value > 0), value).alias("capacity_minutes"),
    )


def check_unique(dimension: DataFrame) -> DataFrame:
    """The dimension, once no advisor_id is listed twice; else a UsageError naming them."""
    duplicated = [
        row["advisor_id"]
        for row in dimension.groupBy("advisor_id").count().filter("count > 1").orderBy("advisor_id").limit(5).collect()
    ]
    if duplicated:
        names = ", ".join(repr(advisor) for advisor in duplicated)
        raise UsageError(f"advisors dimension lists advisor_id {names} more than once; fix advisors/*.csv and rerun")
    return dimension
