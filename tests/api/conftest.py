"""Fixtures of the read-API tests: a throw-away database and Redis key prefix per test, a private redis-server
that a test may stop and restart, publishing small tables, and the API on a real uvicorn server in a thread.
Helpers they share with the tests live in read_api_support.py."""
from __future__ import annotations

import threading
import time
import uuid
from typing import Dict, List, Optional
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
import redis
from read_api_support import RedisProcess, RunningApi, write_tables

from api.config import ApiConfig, PublishConfig
from api.publish import PublishResult, publish
from tests.conftest import free_port, wait_until


# ---------------------------------------------------------------- PostgreSQL and Redis isolation

def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@pytest.fixture
def db_url(database_url) -> str:
    """A fresh, empty database for this test, dropped afterwards."""
    name = f"advising_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield _with_database(database_url, name)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def key_prefix(redis_url) -> str:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"advtest_{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def private_redis():
    server = RedisProcess(free_port())
    server.start()
    yield server
    server.stop()


# ---------------------------------------------------------------- publishing and the running API

@pytest.fixture
def publish_tables(tmp_path, db_url):
    """publish_tables(advisors, trends, redis_url=None, key_prefix=...) -> PublishResult, into this test's database."""
    def run(advisors: List[dict], trends: List[dict], redis_url: Optional[str] = None, key_prefix: str = "advising") -> PublishResult:
        root = write_tables(tmp_path / f"out-{uuid.uuid4().hex[:6]}", advisors, trends)
        return publish(PublishConfig(output=str(root), database_url=db_url, redis_url=redis_url, key_prefix=key_prefix))

    return run


@pytest.fixture
def start_api():
    """start_api(config, clock=time.monotonic) -> RunningApi: the app on a real uvicorn server on loopback, in a
    thread; `clock` drives the cache's timers (a FakeClock lets a test move time instead of sleeping)."""
    import uvicorn

    from api.app import create_app

    running: Dict[int, RunningApi] = {}

    def start(config: ApiConfig, clock=time.monotonic) -> RunningApi:
        app = create_app(config, clock)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started or None, "the API did not start", alive=thread.is_alive, seconds=10)
        api = running[config.port] = RunningApi(f"http://127.0.0.1:{config.port}", app, server, thread)
        return api

    yield start
    for api in running.values():
        api.server.should_exit = True
        api.thread.join(timeout=15)
