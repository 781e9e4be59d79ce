"""Helpers for the stream sink tests: Lambda-shaped stream records, reading the change log back, and a
fault-injecting HTTP proxy that sits between boto3 and the moto server."""
from __future__ import annotations

import gzip
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional
from urllib.parse import unquote, urlparse

from boto3.dynamodb.types import TypeSerializer

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/appointments/stream/2026-01-05T08:00:00.000"
_SERIALIZER = TypeSerializer()


def dynamodb_json(item: Optional[dict]) -> Optional[dict]:
    return None if item is None else {name: _SERIALIZER.serialize(value) for name, value in item.items()}


def stream_record(sequence: int, event_name: str, key: str, created: float, new=None, old=None) -> dict:
    """One record as Lambda delivers it from a NEW_AND_OLD_IMAGES stream (images in DynamoDB JSON)."""
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
    return {
        "eventID": f"evt-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }


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
    policy refusing one prefix would); everything else reaches moto unchanged."""

    def __init__(self, upstream: str):
        self.upstream = urlparse(upstream)
        self.deny: Optional[str] = None
        self.denied: List[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
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
