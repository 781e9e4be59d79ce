"""`advising backfill`: a DynamoDB export (S3 or local) -> synthetic INSERT lines in the change log."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import pytest
from stream_sink_support import dynamodb_json, lines_of, read_change_log

from advising.cli import main

EXPORT_ID = "01767657600000-a1b2c3d4"
EXPORT_TIME = "2026-01-06T00:00:00.250Z"
EXPORT_MS = "1767657600250"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/appointments"


def appointment(key: str, **changes) -> dict:
    return {
        "appointment_id": key,
        "student_id": "s-" + key,
        "advisor_id": "adv-1",
        "department": "Physics",
        "start_time": "2026-01-08T15:00:00Z",
        "duration_minutes": 45,
        "status": "BOOKED",
        "created_at": "2026-01-05T08:00:00Z",
        "updated_at": "2026-01-05T09:00:00.5Z",
        "channel": "mobile",
        **changes,
    }


ITEMS = [appointment("a-1"), appointment("a-2", channel=None, status="COMPLETED"), appointment("a-3", duration_minutes=480)]


def export_files(items_per_file, export_id=EXPORT_ID, **summary_changes) -> dict:
    """The files of a full DynamoDB export (names relative to the export folder), as AWS writes them."""
    base = f"dynamo/AWSDynamoDB/{export_id}/"
    files, manifest = {}, []
    for number, items in enumerate(items_per_file):
        name = f"data/part{number}abc.json.gz"
        text = "".join(json.dumps({"Item": dynamodb_json(item)}) + "\n" for item in items)
        files[name] = gzip.compress(text.encode())
        manifest.append({"itemCount": len(items), "md5Checksum": "x", "etag": "y", "dataFileS3Key": base + name})
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{TABLE_ARN}/export/{export_id}",
        "startTime": EXPORT_TIME,
        "endTime": "2026-01-06T00:05:00.000Z",
        "tableArn": TABLE_ARN,
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportTime": EXPORT_TIME,
        "s3Bucket": "exports",
        "s3Prefix": "dynamo",
        "s3SseAlgorithm": "AES256",
        "manifestFilesS3Key": base + "manifest-files.json",
        "billedSizeBytes": 1000,
        "itemCount": sum(len(items) for items in items_per_file),
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
        **summary_changes,
    }
    files["manifest-summary.json"] = json.dumps(summary).encode()
    files["manifest-files.json"] = "".join(json.dumps(entry) + "\n" for entry in manifest).encode()
    return files


def write_local(root: Path, files: dict, export_id=EXPORT_ID) -> Path:
    folder = root / "AWSDynamoDB" / export_id
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    return folder


def local_lines(raw: Path) -> dict:
    return {
        str(path.relative_to(raw)): [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
        for path in sorted(raw.rglob("*.jsonl.gz"))
    }


def expected_line(item: dict) -> dict:
    return {
        "event_id": f"backfill-{EXPORT_ID}-{item['appointment_id']}",
        "event_name": "INSERT",
        "sequence_number": EXPORT_MS,
        "approximate_creation_time": "2026-01-06T00:00:00.250000Z",
        "table": "appointments",
        "keys": {"appointment_id": item["appointment_id"]},
        "new_image": item,
        "old_image": None,
    }


def test_backfill_from_an_s3_export_into_the_s3_change_log_is_idempotent(raw_bucket, capsys):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    for name, body in export_files([ITEMS[:2], [], ITEMS[2:]]).items():
        s3.put_object(Bucket="exports", Key=f"dynamo/AWSDynamoDB/{EXPORT_ID}/{name}", Body=body)
    argv = ["backfill", "--export", f"s3://exports/dynamo/AWSDynamoDB/{EXPORT_ID}/", "--raw", f"s3://{raw_bucket}/raw"]

    assert main(argv) == 0
    first = read_change_log(s3, raw_bucket)
    folder = f"raw/appointments/ingest_date=2026-01-06/backfill-{EXPORT_ID}/"
    assert sorted(first) == [folder + "part0abc.jsonl.gz", folder + "part2abc.jsonl.gz"]
    assert lines_of(first) == [expected_line(item) for item in ITEMS]
    assert "3 items in 2 objects" in capsys.readouterr().out

    assert main(argv) == 0
    assert read_change_log(s3, raw_bucket) == first


def test_backfill_between_local_folders_matches_and_sorts_before_any_stream_record(tmp_path):
    export = write_local(tmp_path / "export", export_files([ITEMS]))
    raw = tmp_path / "raw"
    assert main(["backfill", "--export", str(export), "--raw", f"file://{raw}"]) == 0

    written = local_lines(raw)
    assert list(written) == [f"appointments/ingest_date=2026-01-06/backfill-{EXPORT_ID}/part0abc.jsonl.gz"]
    lines = written[f"appointments/ingest_date=2026-01-06/backfill-{EXPORT_ID}/part0abc.jsonl.gz"]
    assert lines == [expected_line(item) for item in ITEMS]
    assert all(int(line["sequence_number"]) < 10**20 for line in lines)
    assert type(lines[0]["new_image"]["duration_minutes"]) is int
    assert not list(raw.rglob("*.tmp"))


def test_a_later_export_sorts_after_an_earlier_one(tmp_path):
    raw = tmp_path / "raw"
    early = write_local(tmp_path / "e1", export_files([ITEMS[:1]], "01767657600000-early000"), "01767657600000-early000")
    late_files = export_files([[appointment("a-1", status="CANCELLED")]], "01767744000000-late0000", exportTime="2026-01-07T00:00:00Z")
    late = write_local(tmp_path / "e2", late_files, "01767744000000-late0000")
    assert main(["backfill", "--export", str(early), "--raw", str(raw)]) == 0
    assert main(["backfill", "--export", str(late), "--raw", str(raw)]) == 0
    lines = [line for file_lines in local_lines(raw).values() for line in file_lines]
    newest = max(lines, key=lambda line: int(line["sequence_number"]))
    assert newest["new_image"]["status"] == "CANCELLED"
    assert newest["approximate_creation_time"] == "2026-01-07T00:00:00Z"


@pytest.mark.parametrize(
    "make_export, message",
    [
        (lambda root: root / "nowhere", "--export: no manifest-summary.json under"),
        (lambda root: write_local(root, export_files([ITEMS], exportType="INCREMENTAL_EXPORT")), "only full exports"),
        (lambda root: write_local(root, export_files([ITEMS], outputFormat="ION")), "only DYNAMODB_JSON"),
        (lambda root: write_local(root, export_files([ITEMS], exportTime="yesterday")), "exportTime"),
        (lambda root: write_local(root, export_files([[{"id": "x"}]])), "has no appointment_id"),
    ],
    ids=["missing", "incremental", "ion", "bad-time", "other-table"],
)
def test_misuse_is_one_line_and_exit_status_2(tmp_path, capsys, make_export, message):
    export = make_export(tmp_path / "export")
    assert main(["backfill", "--export", str(export), "--raw", str(tmp_path / "raw")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("advising backfill: error: ")
    assert message in err
    assert not (tmp_path / "raw").exists()


def test_missing_raw_bucket_is_one_line(aws_env, tmp_path, capsys):
    export = write_local(tmp_path / "export", export_files([ITEMS]))
    assert main(["backfill", "--export", str(export), "--raw", "s3://no-such-bucket/raw"]) == 2
    assert "--raw: bucket 'no-such-bucket' does not exist" in capsys.readouterr().err
