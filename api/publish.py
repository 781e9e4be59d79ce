"""`advising publish-db`: load the pipeline's serving tables from Parquet into PostgreSQL for the read API.

Flow: Parquet (Hive-partitioned, read with pyarrow, no Spark) -> temporary staging tables (COPY) -> in ONE
transaction, per table: delete the rows that are gone, upsert the rows that are new or changed -> a new
data version row if anything changed -> commit -> tell Redis the new version, which makes every cached
entry of the old version unreachable at once (cache keys carry the version).

A repeated publish of the same data changes nothing and does not bump the version, so cached entries
stay valid; it still (re)announces the current version to Redis, which heals a publish whose Redis
notification failed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from api.config import PublishConfig
from api.schema import CURRENT_VERSION_SQL, SCHEMA, SERVED_TABLES, Table, ensure_schema
from common.errors import UsageError

log = logging.getLogger(__name__)

# Serialises concurrent publishes (an arbitrary constant shared by every publisher).
_PUBLISH_LOCK_ID = 7_301_406_115

# A version never goes backwards, even if the database is re-created: it is at least the publish time in
# milliseconds. Redis only ever raises its copy of the version, so a stale announcement cannot win.
_NEXT_VERSION_SQL = (
    f"SELECT greatest(coalesce(max(version), 0) + 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) "
    f"FROM {SCHEMA}.data_version"
)


@dataclass(frozen=True)
class PublishResult:
    version: int
    changed: bool  # False: same content as the previous publish, version kept
    changed_rows: int
    rows: Dict[str, int]
    redis_notified: Optional[bool]  # None when no Redis URL was given


def read_table(output: Path, table: Table) -> pa.Table:
    """One serving table from the pipeline's output root, with exactly the contract's columns and types."""
    path = output / table.name
    if not path.is_dir():
        raise UsageError(f"table folder {path} does not exist: run the pipeline first or pass the right --output")
    partitioning = pads.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
    try:
        dataset = pads.dataset(str(path), format="parquet", partitioning=partitioning, ignore_prefixes=["_", "."])
        data = dataset.to_table()
    except (pa.ArrowInvalid, OSError) as exc:
        raise UsageError(f"cannot read {path} as Hive-partitioned Parquet: {str(exc).splitlines()[0]}") from None
    missing = [c for c in table.column_names if c not in data.column_names]
    if missing:
        raise UsageError(f"{path} lacks column(s) {', '.join(missing)}: is it the pipeline's {table.name} table?")
    target = pa.schema([pa.field(c.name, getattr(pa, c.arrow_type)(), c.nullable) for c in table.columns])
    try:
        data = data.select(list(table.column_names)).cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise UsageError(f"{path} does not match the contract of {table.name}: {str(exc).splitlines()[0]}") from None
    _check_unique_key(data, table, path)
    return data


def _check_unique_key(data: pa.Table, table: Table, path: Path) -> None:
    counts = data.group_by(list(table.key)).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts["count_all"], 1))
    if dupes.num_rows:
        first = {k: str(dupes[k][0].as_py()) for k in table.key}
        raise UsageError(f"{path} has {dupes.num_rows} duplicate key(s) {table.key}, e.g. {first}; the contract allows one row per key")


def publish(config: PublishConfig) -> PublishResult:
    """Load both tables in one transaction, bump the version if anything changed, then announce it to Redis."""
    output = Path(config.output)
    if not output.is_dir():
        raise UsageError(f"--output {output} is not a directory")
    data = {table.name: read_table(output, table) for table in SERVED_TABLES}

    with psycopg.connect(config.database_url) as conn:  # one transaction, committed when the block ends
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK_ID,))
        ensure_schema(conn)
        changed_rows = sum(_replace_content(conn, table, data[table.name]) for table in SERVED_TABLES)
        current = conn.execute(CURRENT_VERSION_SQL).fetchone()[0]
        changed = changed_rows > 0 or current == 0
        if changed:
            version = conn.execute(_NEXT_VERSION_SQL).fetchone()[0]
            conn.execute(
                f"INSERT INTO {SCHEMA}.data_version (version, changed_rows, advisor_daily_load_rows, booking_trends_daily_rows) "
                "VALUES (%s, %s, %s, %s)",
                (version, changed_rows, data["advisor_daily_load"].num_rows, data["booking_trends_daily"].num_rows),
            )
        else:
            version = current
    if changed:
        with psycopg.connect(config.database_url, autocommit=True) as conn:
            for table in SERVED_TABLES:  # fresh planner statistics for the API's queries
                conn.execute(f"ANALYZE {table.qualified}")

    return PublishResult(
        version=version,
        changed=changed,
        changed_rows=changed_rows,
        rows={name: table.num_rows for name, table in data.items()},
        redis_notified=_announce(config, version) if config.redis_url else None,
    )


def _replace_content(conn: psycopg.Connection, table: Table, data: pa.Table) -> int:
    """Make the live table equal to `data`; returns how many rows were deleted, inserted or updated.

    Delete + upsert (rather than truncate + insert) touches only what changed and never takes a lock
    that blocks the API's readers, who keep seeing the previous content until the commit."""
    stage = f"stage_{table.name}"
    cols = ", ".join(table.column_names)
    conn.execute(f"CREATE TEMP TABLE {stage} (LIKE {table.qualified}) ON COMMIT DROP")
    with conn.cursor().copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
        for batch in data.to_batches(max_chunksize=10_000):
            for row in zip(*(column.to_pylist() for column in batch.columns)):
                copy.write_row(row)
    key_match = " AND ".join(f"s.{k} = t.{k}" for k in table.key)
    deleted = conn.execute(
        f"DELETE FROM {table.qualified} t WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {key_match})"
    ).rowcount
    values = [c for c in table.column_names if c not in table.key]
    upserted = conn.execute(
        f"INSERT INTO {table.qualified} AS t ({cols}) SELECT {cols} FROM {stage} "
        f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
        + f" WHERE ({', '.join('t.' + c for c in values)}) IS DISTINCT FROM ({', '.join('EXCLUDED.' + c for c in values)})"
    ).rowcount
    return deleted + upserted


def _announce(config: PublishConfig, version: int) -> bool:
    """Raise Redis' copy of the data version. A failure is not fatal: every API process re-reads the
    version from PostgreSQL within its version-check interval."""
    import redis

    from api.cache import connect_redis, raise_version

    client = connect_redis(config.redis_url, timeout=2.0, password=config.redis_password)
    try:
        raise_version(client, config.key_prefix, version)
        return True
    except redis.RedisError as exc:  # not fatal: the data is committed and the API re-reads the version
        log.warning("published version %s to PostgreSQL but could not notify Redis (%s)", version, exc)
        return False
    finally:
        client.close()
