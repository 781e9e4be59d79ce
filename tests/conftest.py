"""Shared test fixtures: one local SparkSession, a moto server over HTTP, Redis and PostgreSQL URLs.

Services are real: the test command (`make test`) starts Redis and PostgreSQL where they are absent,
and a fixture that cannot reach its service fails the test instead of skipping it.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar
from urllib.parse import urlparse

import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

# py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after pytest has
# closed the stream a plugin attached to the root logger: keep it quiet instead of printing a traceback.
logging.getLogger("py4j").setLevel(logging.WARNING)

# Hypothesis profiles (issue 16). CI draws the same cases on every run, so a landing is never blocked by a
# case no one has seen; local runs keep exploring, and a failure they find becomes an @example. Property
# tests set no max_examples, derandomize or database of their own, so the profile governs every one of
# them (tests/test_hypothesis_profiles.py checks that).
hypothesis_settings.register_profile("dev", max_examples=200, deadline=None)
hypothesis_settings.register_profile("ci", max_examples=500, deadline=None, derandomize=True, database=None, print_blob=True)


def hypothesis_profile_name(env: dict) -> str:
    """HYPOTHESIS_PROFILE when given, else `ci` under CI=true (what CI services and .ci/run set), else `dev`."""
    if env.get("HYPOTHESIS_PROFILE"):
        return env["HYPOTHESIS_PROFILE"]
    return "ci" if env.get("CI", "").lower() in ("true", "1", "yes") else "dev"


PROFILE_KEY = pytest.StashKey[str]()


def pytest_configure(config):
    # Before collection: a test module's @settings inherits from the profile loaded when it is imported.
    name = config.getoption("hypothesis_profile", None) or hypothesis_profile_name(os.environ)
    hypothesis_settings.load_profile(name)
    config.stash[PROFILE_KEY] = name


def pytest_report_header(config):
    current = hypothesis_settings.default
    return (
        f"hypothesis: profile {config.stash[PROFILE_KEY]}, derandomize={current.derandomize}, "
        f"max_examples={current.max_examples}, database={'none' if current.database is None else 'local'}"
    )


T = TypeVar("T")

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(attempt: Callable[[], Optional[T]], failure: str, *, not_yet: tuple = (),
               alive: Callable[[], bool] = lambda: True, seconds: float = 30) -> T:
    """What `attempt()` returns once it returns something (not None) without raising one of `not_yet`: the
    bounded readiness poll of a server or an asynchronous operation a test has just started. Fails with
    `failure` in one line when `alive()` turns false or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = attempt()
            if result is not None:
                return result
        except not_yet:
            pass
        if time.monotonic() > deadline or not alive():
            pytest.fail(failure, pytrace=False)
        time.sleep(0.05)


def spark_child_env(**extra: str) -> dict:
    """The environment for a child Python that starts its own local Spark JVM from this checkout: this
    process's, the repository on PYTHONPATH, without the gateway port of a JVM this process may already have
    (which would make pyspark attach to it instead), plus `extra`."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **extra}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def _require_tcp(url: str, name: str) -> None:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port), timeout=3):
            return
    except OSError as exc:
        pytest.fail(f"{name} is not reachable at {url} ({exc}); `make test` starts it, or set the URL", pytrace=False)


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session (local[2], small shuffles)."""
    from jobs.session import get_session

    session = get_session("advising-tests", master="local[2]", extra={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto server in server mode (HTTP on loopback); boto3 clients point at it with endpoint_url."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    # Step Functions' service integrations call back into the server on this port.
    os.environ["MOTO_PORT"] = str(port)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """Fake credentials and a region for boto3, and a clean moto state for each test."""
    import urllib.request

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=10).read()
    return moto_endpoint


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    _require_tcp(url, "Redis")
    return url


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    _require_tcp(url, "PostgreSQL")
    return url
