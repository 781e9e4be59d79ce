"""`advising reconcile`: prove the change log holds what the table held, against a DynamoDB export.

Place in the flow: table -> (stream sink | backfill) -> change log -> pipeline. The export is the table's
own word at its `exportTime`; the change log, with the contract's rules (jobs.parsing, jobs.compaction)
applied to the changes up to that time, says what each appointment was then. Appointments the export has
and the log lacks are `missing`, ones whose images differ `differing`, ones only the log has `extra`.
`--repair` writes the missing items through the backfill path (synthetic INSERTs of this export), so the
next `advising run` has them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from common.errors import UsageError

EXIT_DIFFERENT = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="compare a DynamoDB table export with the change log at the export's time",
        description="Exit 0 when every appointment agrees, 3 when any is missing, differing or extra.",
    )
    parser.add_argument("--export", required=True, metavar="S3_OR_PATH", help="the export's folder (holding manifest-summary.json)")
    parser.add_argument("--input", required=True, metavar="LOG_ROOT", help="the change-log root (the pipeline's --input)")
    parser.add_argument("--report", type=Path, metavar="FILE.json", help="write the ids of each kind here")
    parser.add_argument("--repair", action="store_true", help="write the missing items into the change log (backfill path)")
    parser.add_argument("--master", default=None, help="Spark master (default local[*])")
    parser.set_defaults(func=_reconcile)


@dataclass
class Reconciliation:
    export_time: str
    in_export: int
    in_log: int
    missing: List[str] = field(default_factory=list)
    differing: List[str] = field(default_factory=list)
    extra: List[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"reconcile: {self.in_export} in the export, {self.in_log} in the change log at {self.export_time}: "
            f"{len(self.missing)} missing, {len(self.differing)} differing, {len(self.extra)} extra"
        )

    def report(self) -> dict:
        return {"export_time": self.export_time, "missing": self.missing, "differing": self.differing, "extra": self.extra}


def export_items(export, manifest) -> Dict[str, dict]:
    """appointment_id -> plain item, for every item of the export (converted as the backfill converts)."""
    from functions.stream_sink.backfill import synthetic_lines

    items: Dict[str, dict] = {}
    for data_file in manifest.data_files:
        with export.open(data_file) as stream, gzip.open(stream, "rt", encoding="utf-8") as text:
            for line in synthetic_lines(text, manifest, data_file):
                if line["keys"]:
                    items[line["keys"]["appointment_id"]] = line["new_image"]
    return items


def log_state(spark, log_root: str, until: dt.datetime) -> Dict[str, dict]:
    """appointment_id -> image, for every appointment the log says existed at `until` (contract rules 1-4 on
    the changes created up to then)."""
    from pyspark.sql import functions as F

    from jobs import compaction, parsing
    from jobs.storage import join

    appointments = join(log_root, "appointments")
    lines = (
        spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.jsonl*").text(appointments)
        .select("value", F.col("_metadata.file_path").alias("source_file"))
        .withColumn("ingest_date", F.to_date(F.regexp_extract("source_file", r"/ingest_date=(\d{4}-\d{2}-\d{2})/", 1)))
    )
    changes = parsing.valid_changes(parsing.parse_lines(lines)).filter(F.col("approximate_creation_time") <= F.lit(until))
    winners = compaction.latest_changes(changes).filter(F.col("event_name") != "REMOVE").select("appointment_id", "new_image")
    return {row.appointment_id: _image(row.new_image) for row in winners.toLocalIterator()}


def _image(text):
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return text


def compare(items: Dict[str, dict], state: Dict[str, dict], export_time: str) -> Reconciliation:
    result = Reconciliation(export_time, len(items), len(state))
    for appointment_id in sorted(items):
        if appointment_id not in state:
            result.missing.append(appointment_id)
        elif state[appointment_id] != items[appointment_id]:
            result.differing.append(appointment_id)
    result.extra = sorted(set(state) - set(items))
    return result


def repair(export, manifest, raw_root: str, missing: List[str]) -> str:
    """Write the missing items as this export's synthetic INSERTs (the backfill's lines, so a later full
    backfill of the same export repeats them as the same events) in one object."""
    from functions.stream_sink import records
    from functions.stream_sink.backfill import Location, synthetic_lines

    wanted, lines = set(missing), []
    for data_file in manifest.data_files:
        with export.open(data_file) as stream, gzip.open(stream, "rt", encoding="utf-8") as text:
            lines.extend(line for line in synthetic_lines(text, manifest, data_file) if line["keys"] and line["keys"]["appointment_id"] in wanted)
    lines.sort(key=lambda line: line["event_id"])
    name = records.object_key("", manifest.export_time.date().isoformat(), manifest.folder, "repair")
    return Location(raw_root, "--input").write(name, records.encode_lines(lines))


def _reconcile(args: argparse.Namespace) -> int:
    from functions.stream_sink.backfill import Location, read_manifest
    from jobs.session import get_session

    export = Location(args.export, "--export")
    manifest = read_manifest(export)  # misuse (no export, no manifests) ends here, before any JVM
    log_root = args.input
    if not log_root.startswith("s3://") and not (Path(log_root.removeprefix("file://")) / "appointments").is_dir():
        raise UsageError(f"--input: no appointments/ folder under {log_root}")
    items = export_items(export, manifest)
    export_time = manifest.export_time.isoformat().replace("+00:00", "Z")
    spark = get_session("advising-reconcile", master=args.master)
    result = compare(items, log_state(spark, log_root, manifest.export_time), export_time)
    print(result.line())
    if args.report:
        args.report.write_text(json.dumps(result.report(), indent=2) + "\n")
    if args.repair and result.missing:
        print(f"reconcile: repaired {len(result.missing)} missing into {repair(export, manifest, log_root, result.missing)}")
    return EXIT_DIFFERENT if (result.missing or result.differing or result.extra) else 0
