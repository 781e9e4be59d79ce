"""Versioned publishing: each run's tables and compaction state in an immutable version folder, made current
by one pointer write; retention, rollback, the output's lease, and the Glue Data Catalog.

Where it sits: the pipeline (jobs.pipeline) writes a run's tables and state into `version_dir(...)` and then
calls `VersionStore.commit`; `advising versions` and `advising rollback` use the same store. It knows nothing
of the transformations; every storage call goes through jobs.storage (os locally, Hadoop's FileSystem API
elsewhere, which is EMRFS on a cluster).

Layout under an output root (docs/data-contract.md, "Publishing and versions"):

    _versions/<run_id>/<table>/<column>=<value>/part-*.parquet   the four tables
    _versions/<run_id>/_state/changes/generation=<n>/, rejects/   the run's compaction state
    _versions/<run_id>/_version.json                             written last: the version is complete
    _current.json                  THE commit point: names the current version and lists its files
    _current -> _versions/<id>     local disk only: a symlink switched right after the commit, and
    <table> -> _current/<table>    fixed links, so {output}/<table>/ always shows the current version
    _lease.json                    the run that holds the output
    _runs/<run_id>/                run manifests and quality reports

Object stores have no rename, so nothing is renamed: a version is written once in its own folder, and the
commit is one PUT of a small object, which S3 makes visible whole or not at all. A run killed at any moment
leaves the old pointer (the next run removes its half-written folder) or the new one.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from common.errors import UsageError
from jobs.storage import Storage, join

VERSIONS = "_versions"
POINTER = "_current.json"
VIEW = "_current"
VERSION_DOC = "_version.json"
LEASE = "_lease.json"
STATE = "_state"
FORMAT = 2
# Folders of the layout before versions existed; removed once the first version is committed.
_LEGACY = ("_staging", "_state")
LEASE_SECONDS = 600  # a holder renews every third of this; a lease not renewed for this long is dead
_PARTITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=([^/]+)/")


def version_dir(output_root: str, run_id: str) -> str:
    return join(output_root, VERSIONS, run_id)


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class OutputBusy(UsageError):
    """Another live run holds the output's lease."""


@dataclass(frozen=True)
class Version:
    """One complete version, as its _version.json describes it."""

    run_id: str
    finished_at: str
    rows: Dict[str, int]
    tables: Dict[str, dict]  # name -> {"files": [relative to the table folder], "partition_column", "partition_range"}
    state: dict  # the compaction state's manifest (jobs.state.State)

    @classmethod
    def from_json(cls, text: str) -> Optional["Version"]:
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return None
        return cls(doc["run_id"], doc["finished_at"], doc["rows"], doc["tables"], doc["state"])

    def to_json(self) -> str:
        doc = {"format": FORMAT, "run_id": self.run_id, "finished_at": self.finished_at, "rows": self.rows,
               "tables": self.tables, "state": self.state}
        return json.dumps(doc, indent=1, sort_keys=True)


class VersionStore:
    """The versions of one output root: commit, list, roll back, retain, and the lease that guards them."""

    def __init__(self, storage: Storage, output_root: str, clock: Callable[[], float] = time.time, log=print):
        self.storage = storage
        self.root = output_root
        self.clock = clock
        self.log = log

    # Reading -------------------------------------------------------------------------------------------------

    def current_id(self) -> Optional[str]:
        text = self.storage.read_text(join(self.root, POINTER))
        if text is None:
            return None
        try:
            return json.loads(text)["run_id"]
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{join(self.root, POINTER)} is not a version pointer; restore it with `advising rollback`") from None

    def read(self, run_id: str) -> Optional[Version]:
        text = self.storage.read_text(join(version_dir(self.root, run_id), VERSION_DOC))
        return Version.from_json(text) if text is not None else None

    def current(self) -> Optional[Version]:
        run_id = self.current_id()
        return self.read(run_id) if run_id is not None else None

    def versions(self) -> List[Version]:
        """Every complete version kept, oldest first (run ids begin with their UTC start time)."""
        found = (self.read(name) for name in self.storage.children(join(self.root, VERSIONS)))
        return sorted((v for v in found if v is not None), key=lambda v: v.run_id)

    # Writing -------------------------------------------------------------------------------------------------

    def recover(self) -> None:
        """Undo what a killed run left (call while holding the lease): the local view follows the pointer
        again, and folders of versions that never completed are removed."""
        current = self.current_id()
        if current is not None:
            self._show(current)
        for name in self.storage.children(join(self.root, VERSIONS)):
            if name != current and self.read(name) is None:
                self.log(f"removing {join(self.root, VERSIONS, name)}: left by a run that did not finish")
                self.storage.delete(version_dir(self.root, name))

    def commit(self, run_id: str, rows: Dict[str, int], state: dict, tables: Dict[str, str], keep: int,
               lease: Optional["Lease"] = None) -> Version:
        """Make the version written under version_dir(run_id) current. `tables` maps each table to its
        partition column. Then versions beyond the newest `keep` are deleted (never the current one)."""
        folder = version_dir(self.root, run_id)
        manifest = {}
        for name, column in tables.items():
            files = self.storage.data_files(join(folder, name))
            values = sorted({m.group(2) for m in map(_PARTITION.match, files) if m and m.group(1) == column})
            manifest[name] = {
                "files": files,
                "partition_column": column,
                "partition_range": [values[0], values[-1]] if values else None,
            }
        version = Version(run_id, _utc(self.clock()), dict(rows), manifest, state)
        self.storage.write_text(join(folder, VERSION_DOC), version.to_json())
        if lease is not None:
            lease.check()
        self._point_at(version)
        self._show(run_id)
        self._retain(keep, run_id)
        return version

    def rollback(self, run_id: str) -> Version:
        """Make a kept version current again (tables and state together)."""
        version = self.read(run_id)
        if version is None:
            kept = ", ".join(v.run_id for v in self.versions()) or "none"
            raise UsageError(f"no kept version {run_id!r} under {self.root} (kept: {kept}); `advising versions` lists them")
        self._point_at(version)
        self._show(run_id)
        return version

    def discard(self, run_id: str) -> None:
        """Remove the folder of a run that will not be committed."""
        if self.current_id() != run_id:
            self.storage.delete(version_dir(self.root, run_id))

    def _point_at(self, version: Version) -> None:
        """The commit point: one small document naming the version and listing its files for readers by path."""
        prefix = f"{VERSIONS}/{version.run_id}"
        pointer = {
            "format": FORMAT,
            "run_id": version.run_id,
            "version": prefix,
            "committed_at": _utc(self.clock()),
            "tables": {name: [f"{prefix}/{name}/{f}" for f in t["files"]] for name, t in version.tables.items()},
        }
        self.storage.write_text(join(self.root, POINTER), json.dumps(pointer, indent=1, sort_keys=True))

    def _show(self, run_id: str) -> None:
        """Local disk: {output}/<table>/ shows the current version (one atomic switch of the _current link)."""
        if not self.storage.link(join(self.root, VIEW), f"{VERSIONS}/{run_id}"):
            return
        version = self.read(run_id)
        for name in version.tables if version is not None else ():
            self.storage.link(join(self.root, name), f"{VIEW}/{name}")

    def _retain(self, keep: int, current: str) -> None:
        for version in self.versions()[:-keep]:
            if version.run_id != current:
                self.storage.delete(version_dir(self.root, version.run_id))
        for name in _LEGACY:
            self.storage.delete(join(self.root, name))

    # The lease -----------------------------------------------------------------------------------------------

    def lease(self, run_id: str, seconds: int = LEASE_SECONDS) -> "Lease":
        return Lease(self, run_id, seconds)


class Lease:
    """Who may write an output root. The holder renews it every third of its term from a background thread;
    a lease not renewed within its term is free (a dead cluster node must not block the next night), and on
    the same machine a lease whose process is gone is free at once. Taking it is write-then-read-back: on S3,
    EMRFS offers no conditional write, so the scheduler's one-run-at-a-time setting stays the first guard."""

    def __init__(self, store: VersionStore, run_id: str, seconds: int):
        self.store, self.run_id, self.seconds = store, run_id, seconds
        self.path = join(store.root, LEASE)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _doc(self) -> str:
        now = self.store.clock()
        return json.dumps({"run_id": self.run_id, "host": socket.gethostname(), "pid": os.getpid(),
                           "renewed_at": _utc(now), "expires_at": now + self.seconds})

    def holder(self) -> Optional[dict]:
        text = self.store.storage.read_text(self.path)
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None  # a torn write of a lease that was being taken: nobody holds it

    def _alive(self, holder: dict) -> bool:
        if holder.get("expires_at", 0) <= self.store.clock():
            return False
        if holder.get("host") == socket.gethostname():
            return _process_exists(holder.get("pid"))
        return True

    def __enter__(self) -> "Lease":
        holder = self.holder()
        if holder is not None and holder.get("run_id") != self.run_id and self._alive(holder):
            raise OutputBusy(
                f"another run ({holder.get('run_id')}, {holder.get('host')} pid {holder.get('pid')}) is writing "
                f"{self.store.root}; its lease runs until {_utc(holder['expires_at'])} unless renewed: wait for it"
            )
        self.store.storage.write_text(self.path, self._doc())
        self.check()
        self._thread = threading.Thread(target=self._renew, name="advising-lease", daemon=True)
        self._thread.start()
        return self

    def check(self) -> None:
        """Still ours? Called right before the commit, so a run that lost its lease never commits."""
        holder = self.holder()
        if holder is None or holder.get("run_id") != self.run_id:
            other = holder.get("run_id") if holder else "nobody"
            raise OutputBusy(f"the lease on {self.store.root} was taken by {other}; this run stops without publishing")

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.store.storage.write_text(self.path, self._doc())
            except Exception as exc:  # the next renewal tries again; check() guards the commit
                self.store.log(f"warning: could not renew the lease on {self.store.root}: {str(exc).splitlines()[0]}")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self.holder()
        if holder is not None and holder.get("run_id") == self.run_id:
            self.store.storage.delete(self.path)


def _process_exists(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


# The Glue Data Catalog -------------------------------------------------------------------------------------------

_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
# An empty table has no partition: a one-day range Athena finds nothing in.
_EMPTY_RANGE = ["1970-01-01", "1970-01-01"]


def table_input(name: str, schema, partition_column: str, location: str, version: Version) -> dict:
    """The Glue table of one published table: Parquet, the contract's column types, the partition column as a
    partition key, and partition projection (Athena computes the partitions; nothing to register)."""
    columns = [{"Name": f.name, "Type": f.dataType.simpleString()} for f in schema.fields if f.name != partition_column]
    low, high = version.tables[name]["partition_range"] or _EMPTY_RANGE
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Description": f"advising analytics: {name}, version {version.run_id}",
        "PartitionKeys": [{"Name": partition_column, "Type": "date"}],
        "StorageDescriptor": {"Columns": columns, "Location": location, **_PARQUET},
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "parquet",
            "advising.run_id": version.run_id,
            "projection.enabled": "true",
            f"projection.{partition_column}.type": "date",
            f"projection.{partition_column}.format": "yyyy-MM-dd",
            f"projection.{partition_column}.range": f"{low},{high}",
            f"projection.{partition_column}.interval": "1",
            f"projection.{partition_column}.interval.unit": "DAYS",
            "storage.location.template": f"{location}/{partition_column}=${{{partition_column}}}",
        },
    }


def sync_catalog(glue, database: str, output_root: str, version: Version, tables: Dict[str, tuple]) -> List[str]:
    """Point the database's tables at `version`: the database and each missing table are created, each table
    that names another version is switched with one UpdateTable call. Returns the tables changed."""
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        try:
            glue.create_database(DatabaseInput={"Name": database, "Description": "advising analytics tables"})
        except glue.exceptions.AlreadyExistsException:
            pass
    changed = []
    for name, (schema, partition_column) in tables.items():
        wanted = table_input(name, schema, partition_column, join(version_dir(output_root, version.run_id), name), version)
        try:
            existing = glue.get_table(DatabaseName=database, Name=name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            existing = None
        if existing is None:
            try:
                glue.create_table(DatabaseName=database, TableInput=wanted)
                changed.append(name)
                continue
            except glue.exceptions.AlreadyExistsException:
                existing = {}
        if existing.get("Parameters") != wanted["Parameters"] or existing.get("StorageDescriptor", {}).get("Location") != wanted["StorageDescriptor"]["Location"]:
            glue.update_table(DatabaseName=database, TableInput=wanted)
            changed.append(name)
    return changed
