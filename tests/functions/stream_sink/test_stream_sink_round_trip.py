"""End to end over HTTP: DynamoDB table (moto) -> its stream -> the sink handler -> S3 (moto) -> the core
pipeline (local Spark) -> the `appointments` table equals the DynamoDB table's final items.

Local Spark has no S3 connector, so the bucket's change log is copied to a folder first (on EMR,
EMRFS reads s3:// directly). Lambda is played by the test: it reads the stream with the
dynamodbstreams API and hands the handler Lambda-shaped batches, as the event source mapping does.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import boto3
import pytest
from chispa import assert_df_equality
from stream_sink_support import lambda_records, read_change_log

from advising.cli import main as advising
from functions.stream_sink import handler as sink
from jobs.config import RunConfig
from jobs.contract import APPOINTMENTS_SCHEMA
from jobs.pipeline import run_pipeline
from tests.conftest import wait_until

pytestmark = pytest.mark.slow
TABLE = "appointments"
BATCH_SIZE = 3


def appointment(key: str, **changes) -> dict:
    """Every attribute of the contract's item table, as DynamoDB attribute values."""
    item = {
        "appointment_id": {"S": key},
        "student_id": {"S": f"stu-{key}"},
        "advisor_id": {"S": "adv-7"},
        "department": {"S": "Physics"},
        "start_time": {"S": "2026-02-02T15:00:00Z"},
        "duration_minutes": {"N": "30"},
        "status": {"S": "BOOKED"},
        "created_at": {"S": "2026-01-20T09:15:00Z"},
        "updated_at": {"S": "2026-01-20T09:15:00Z"},
        "channel": {"S": "web"},
    }
    for name, value in changes.items():
        if value is None:
            item.pop(name)
        else:
            item[name] = value
    return item


def create_table(dynamodb) -> str:
    table = dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "appointment_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "appointment_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return table["TableDescription"]["LatestStreamArn"]


def put(dynamodb, item):
    dynamodb.put_item(TableName=TABLE, Item=item)


def update(dynamodb, key, expression, values):
    dynamodb.update_item(
        TableName=TABLE, Key={"appointment_id": {"S": key}}, UpdateExpression=expression, ExpressionAttributeValues=values
    )


def delete(dynamodb, key):
    dynamodb.delete_item(TableName=TABLE, Key={"appointment_id": {"S": key}})


def first_changes(dynamodb):
    put(dynamodb, appointment("a-1"))
    put(dynamodb, appointment("a-2", channel={"NULL": True}, department={"S": "History"}))
    put(dynamodb, appointment("a-3", channel=None))
    put(dynamodb, appointment("a-4", tags={"SS": ["exam", "first_visit"]}, rating={"N": "4.5"}))
    put(dynamodb, appointment("a-6", start_time={"S": "2026-02-03T23:30:00.123456-05:00"}, created_at={"S": "2026-02-04T06:00:00+02:00"}))
    # Every other DynamoDB type, as extra attributes: binary and binary set, number set, null, nested list/map.
    put(dynamodb, appointment(
        "a-8", photo={"B": b"\x00\xffpng"}, thumbs={"BS": [b"\x01", b"\x02"]}, slots={"NS": ["3", "1.5"]},
        note={"NULL": True}, history={"L": [{"M": {"at": {"N": "1"}, "by": {"S": "web"}, "raw": {"B": b"\x07"}}}, {"BOOL": False}]},
    ))


def later_changes(dynamodb):
    dynamodb.update_item(
        TableName=TABLE,
        Key={"appointment_id": {"S": "a-1"}},
        UpdateExpression="SET #s = :s, updated_at = :u",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "COMPLETED"}, ":u": {"S": "2026-02-02T16:00:00Z"}},
    )
    update(dynamodb, "a-2", "SET duration_minutes = :d", {":d": {"N": "45"}})
    delete(dynamodb, "a-3")
    delete(dynamodb, "a-4")  # deleted, then created again under the same key
    put(dynamodb, appointment("a-4", advisor_id={"S": "adv-9"}, duration_minutes={"N": "60"}))
    put(dynamodb, appointment("a-5", channel={"S": "walk_in"}))
    dynamodb.update_item(
        TableName=TABLE,
        Key={"appointment_id": {"S": "a-5"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "CANCELLED"}},
    )
    put(dynamodb, appointment("a-7"))
    delete(dynamodb, "a-7")  # removed for good
    put(dynamodb, appointment("a-2", status={"S": "NO_SHOW"}, duration_minutes={"N": "480"}))  # whole-item overwrite


def stream_records(stream_arn: str) -> list:
    """Every record of the stream as the event source mapping delivers them: the Streams API's JSON text
    (binary as base64 strings, times as numbers) with eventSourceARN added."""
    return lambda_records(os.environ["AWS_ENDPOINT_URL"], stream_arn)


def feed(records: list, size: int) -> None:
    for start in range(0, len(records), size):
        assert sink.handler({"Records": records[start : start + size]}, None) == {"batchItemFailures": []}


def copy_change_log(bucket: str, into: Path) -> Path:
    """The bucket's change log under `into`, laid out as the pipeline's --input (RAW_PREFIX dropped)."""
    for key, body in read_change_log(boto3.client("s3"), bucket).items():
        target = into / key.removeprefix("raw/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    return into


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def expected_appointments(spark, dynamodb):
    """The contract's appointments rows, computed from the DynamoDB table's final items (scan)."""
    rows = []
    for item in dynamodb.scan(TableName=TABLE)["Items"]:
        start, created = ts(item["start_time"]["S"]), ts(item["created_at"]["S"])
        duration = int(item["duration_minutes"]["N"])
        channel = item.get("channel", {}).get("S")
        rows.append(
            (
                item["appointment_id"]["S"], item["student_id"]["S"], item["advisor_id"]["S"], item["department"]["S"],
                item["status"]["S"], channel, start, created, ts(item["updated_at"]["S"]),
                start + dt.timedelta(minutes=duration), duration, (start - created).total_seconds() / 3600, start.date(),
            )
        )
    return spark.createDataFrame(rows, APPOINTMENTS_SCHEMA)


def run_and_read(spark, input_root: Path, output_root: Path):
    run_pipeline(spark, RunConfig(input=str(input_root), output=str(output_root), timezone="UTC"), log=lambda *_: None)
    return spark.read.parquet(str(output_root / "appointments")).select(*APPOINTMENTS_SCHEMA.fieldNames())


def test_stream_to_s3_to_pipeline_equals_the_table_and_redelivery_changes_nothing(spark, raw_bucket, tmp_path):
    dynamodb = boto3.client("dynamodb")
    stream_arn = create_table(dynamodb)
    first_changes(dynamodb)
    later_changes(dynamodb)
    records = stream_records(stream_arn)
    assert len(records) == 16
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY", "REMOVE"}
    # One record the sink cannot convert (an attribute type nobody expected) rides in the middle of the stream.
    broken = json.loads(json.dumps(records[2]))
    broken["eventID"], broken["dynamodb"]["SequenceNumber"] = "evt-broken", str(int(records[-1]["dynamodb"]["SequenceNumber"]) + 1)
    broken["dynamodb"]["NewImage"]["rating"] = {"X": "5"}
    records.insert(3, broken)

    feed(records, BATCH_SIZE)
    s3 = boto3.client("s3")
    stored = read_change_log(s3, raw_bucket)
    assert len(stored) == 6
    # Lambda redelivers the same batches (e.g. after a timeout): the same objects with the same bytes.
    feed(records, BATCH_SIZE)
    assert read_change_log(s3, raw_bucket) == stored
    # A redelivery split differently (a retry from the middle of a batch) writes new objects holding
    # records already stored; the pipeline sees each change once all the same.
    feed(records, BATCH_SIZE + 1)
    assert len(read_change_log(s3, raw_bucket)) > len(stored)

    appointments = run_and_read(spark, copy_change_log(raw_bucket, tmp_path / "in"), tmp_path / "out")
    expected = expected_appointments(spark, dynamodb)
    assert expected.count() == 6
    assert_df_equality(appointments, expected, ignore_row_order=True, ignore_nullable=True)
    # The unconvertible record is in quarantine with its own reason, its key and the whole record (once per
    # stored copy: the redelivery split differently stored it twice, and a rejected line counts per copy).
    quarantine = spark.read.parquet(str(tmp_path / "out" / "quarantine")).collect()
    assert {row.reason for row in quarantine} == {"unconvertible_record"}
    (record_text,) = {row.record for row in quarantine}
    assert {row.appointment_id for row in quarantine} == {broken["dynamodb"]["Keys"]["appointment_id"]["S"]}
    assert json.loads(record_text)["unconvertible"]["stream_record"] == broken


def test_backfill_from_an_export_fills_a_gap_in_the_stream(spark, raw_bucket, tmp_path):
    dynamodb = boto3.client("dynamodb")
    stream_arn = create_table(dynamodb)
    first_changes(dynamodb)
    exported = export_table(dynamodb, tmp_path / "export")
    later_changes(dynamodb)
    records = stream_records(stream_arn)

    # The sink missed the first changes (they aged out of the stream): only the later ones reach S3,
    # the export stands in for the rest.
    feed(records[6:], BATCH_SIZE)
    assert advising(["backfill", "--export", str(exported), "--raw", f"s3://{raw_bucket}/raw/"]) == 0

    appointments = run_and_read(spark, copy_change_log(raw_bucket, tmp_path / "in"), tmp_path / "out")
    assert_df_equality(appointments, expected_appointments(spark, dynamodb), ignore_row_order=True, ignore_nullable=True)


def export_table(dynamodb, folder: Path) -> Path:
    """A full export of the table in AWS's layout. moto writes only the data file, so the manifests
    around it are written here, as DynamoDB writes them."""
    dynamodb.update_continuous_backups(TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    table_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["TableArn"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    export_time = dt.datetime.now(dt.timezone.utc)
    export_arn = dynamodb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket="exports", S3Prefix="dynamo")[
        "ExportDescription"
    ]["ExportArn"]

    def finished():
        status = dynamodb.describe_export(ExportArn=export_arn)["ExportDescription"]["ExportStatus"]
        return status if status != "IN_PROGRESS" else None

    assert wait_until(finished, "the table export is still IN_PROGRESS after 10 s", seconds=10) == "COMPLETED"
    (data_key,) = [entry["Key"] for entry in s3.list_objects_v2(Bucket="exports")["Contents"]]
    export_id = data_key.split("/AWSDynamoDB/", 1)[1].split("/", 1)[0]
    root = folder / "AWSDynamoDB" / export_id
    (root / "data").mkdir(parents=True)
    (root / "data" / Path(data_key).name).write_bytes(s3.get_object(Bucket="exports", Key=data_key)["Body"].read())
    stamp = export_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{export_time.microsecond // 1000:03d}Z"
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "tableArn": table_arn,
        "exportTime": stamp,
        "startTime": stamp,
        "s3Bucket": "exports",
        "s3Prefix": "dynamo",
        "manifestFilesS3Key": f"dynamo/AWSDynamoDB/{export_id}/manifest-files.json",
        "itemCount": 6,
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    (root / "manifest-summary.json").write_text(json.dumps(summary))
    (root / "manifest-files.json").write_text(json.dumps({"itemCount": 6, "dataFileS3Key": data_key}) + "\n")
    return root
