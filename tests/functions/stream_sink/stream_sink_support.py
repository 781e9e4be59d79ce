"""Helpers for the stream sink tests: stream records and failure messages shaped as AWS sends them (JSON
text, checked against recorded events in events/), reading the change log back, and a fault-injecting HTTP
proxy that sits between boto3 and the moto server."""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import threading
import urllib.request
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import unquote, urlparse

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/appointments/stream/2026-01-05T08:00:00.000"
EVENTS = Path(__file__).with_name("events")


class Attr(dict):
    """A value already written in DynamoDB JSON (`Attr({"SS": []})`), passed through as is."""


def attribute(value: Any) -> dict:
    """One value in DynamoDB JSON as the JSON text of a Lambda event or an export carries it: numbers as
    strings, binary as base64 text. Written out by hand (not boto3's TypeSerializer, which leaves bytes)."""
    if isinstance(value, Attr):
        return dict(value)
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return {"L": [attribute(item) for item in value]}
    if isinstance(value, dict):
        return {"M": dynamodb_json(value)}
    if isinstance(value, (set, frozenset)):
        members = sorted(value)  # a set in an event has some order; a fixed one keeps tests reproducible
        if all(isinstance(m, str) for m in members):
            return {"SS": members}
        if all(isinstance(m, bytes) for m in members):
            return {"BS": [base64.b64encode(m).decode("ascii") for m in members]}
        return {"NS": [str(m) for m in members]}
    raise TypeError(f"no DynamoDB type for {value!r}")


def dynamodb_json(item: Optional[dict]) -> Optional[dict]:
    return None if item is None else {name: attribute(value) for name, value in item.items()}


def stream_record(sequence: int, event_name: str, key: str, created: float, new=None, old=None) -> dict:
    """One record as Lambda delivers it from a NEW_AND_OLD_IMAGES stream: JSON text (images in DynamoDB
    JSON), checked against the recorded AWS event by test_stream_sink_events.py."""
    change = {
        "ApproximateCreationDateTime": created,
        "Keys": {"appointment_id": {"S": key}},
        "SequenceNumber": str(sequence),
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = dynamodb_json(new)
    if old is not None:
        change["OldImage"] = dynamodb_json(old)
    record = {
        "eventID": f"evt-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }
    return json.loads(json.dumps(record))


def recorded_event(name: str) -> dict:
    """A recorded AWS event or message (tests/functions/stream_sink/events/<name>.json)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def batch_info_message(stream_arn: str, shard_id: str, first: str, last: str, size: int) -> str:
    """The body the event source mapping sends to its on-failure queue for a batch it gave up on, shaped
    like the recorded one (events/ddb-stream-on-failure.json) with this batch's range."""
    message = recorded_event("ddb-stream-on-failure")
    message["DDBStreamBatchInfo"].update(
        streamArn=stream_arn, shardId=shard_id, startSequenceNumber=first, endSequenceNumber=last, batchSize=size
    )
    return json.dumps(message)


def streams_api(endpoint: str, operation: str, body: dict) -> dict:
    """One DynamoDB Streams API call over HTTP, answered as JSON text: what Lambda's poller receives
    (binary as base64 strings, ApproximateCreationDateTime as a number), not boto3's parsed objects."""
    request = urllib.request.Request(
        endpoint + "/",
        data=json.dumps(body).encode(),
        headers={
            "X-Amz-Target": f"DynamoDBStreams_20120810.{operation}",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def lambda_records(endpoint: str, stream_arn: str) -> list:
    """Every record of the stream, as the event source mapping hands them to the function (eventSourceARN added)."""
    records = []
    shards = streams_api(endpoint, "DescribeStream", {"StreamArn": stream_arn})["StreamDescription"]["Shards"]
    for shard in shards:
        iterator = streams_api(
            endpoint, "GetShardIterator", {"StreamArn": stream_arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}
        )["ShardIterator"]
        while iterator:
            page = streams_api(endpoint, "GetRecords", {"ShardIterator": iterator})
            if not page["Records"]:
                break
            records.extend(dict(record, eventSourceARN=stream_arn) for record in page["Records"])
            iterator = page.get("NextShardIterator")
    return records


def read_change_log(s3, bucket: str) -> Dict[str, bytes]:
    """Every object of the bucket: key -> raw bytes."""
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            objects[entry["Key"]] = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return objects


def lines_of(objects: Dict[str, bytes]) -> List[dict]:
    return [json.loads(line) for body in objects.values() for line in gzip.decompress(body).decode().splitlines() if line]


class FaultProxy:
    """An HTTP proxy to moto that answers 403 AccessDenied to PUTs whose path contains `deny` (as a bucket
    policy refusing one prefix would), and a chosen error to one JSON API operation (`refuse`); everything
    else reaches moto unchanged."""

    def __init__(self, upstream: str):
        self.upstream = urlparse(upstream)
        self.deny: Optional[str] = None
        self.denied: List[str] = []
        # (X-Amz-Target, AWS error code): answer that JSON-protocol call with that error, as the service would.
        self.refuse: Optional[tuple] = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.refuse and self.headers.get("X-Amz-Target") == proxy.refuse[0]:
                    error = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{proxy.refuse[1]}", "message": "refused"}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                if self.command == "PUT" and proxy.deny and proxy.deny in unquote(self.path):
                    proxy.denied.append(self.path)
                    error = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "expect")}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = _relay

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
