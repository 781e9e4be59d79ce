"""Redis with an AUTH token (issue 15, point 4): the token lives in Secrets Manager (moto over HTTP), `advising
serve` and `advising publish-db` read it at start, and the cache works against a redis-server that requires it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest
import redis
from cfnlint.decode import decode
from read_api_support import RedisProcess, advisor_row, trend_row, wait_for_health, write_tables

from advising.cli import main
from tests.conftest import free_port

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "read-api.yaml"
TOKEN = "Zq7PvK2m9XwT4sLr8NbY3cHd6FgJ1aE5"


@pytest.fixture
def auth_redis():
    server = RedisProcess(free_port(), password=TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token_secret(aws_env) -> str:
    return boto3.client("secretsmanager").create_secret(Name="advising/read-api/redis-auth", SecretString=TOKEN)["ARN"]


def test_publish_and_serve_read_the_token_from_secrets_manager(tmp_path, capsys, db_url, auth_redis, token_secret, key_prefix):
    # GIVEN a Redis that requires AUTH, and its token in Secrets Manager
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=auth_redis.port).set("probe", "1")
    root = write_tables(tmp_path / "out", [advisor_row("a1", "2024-03-04")], [trend_row("Math", "2024-03-04")])

    # WHEN publish-db and serve are given only the secret's ARN
    assert main(["publish-db", "--output", str(root), "--database-url", db_url, "--redis-url", auth_redis.url,
                 "--redis-auth-secret", token_secret, "--key-prefix", key_prefix]) == 0
    assert "Redis notified" in capsys.readouterr().out
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": auth_redis.url, "CACHE_KEY_PREFIX": key_prefix,
           "REDIS_AUTH_SECRET_ARN": token_secret}
    proc = subprocess.Popen([sys.executable, "-m", "advising.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = wait_for_health(port, proc)
        answers = [httpx.get(f"http://127.0.0.1:{port}/advisors/a1/load", params={"from": "2024-03-01", "to": "2024-03-07"})
                   for _ in range(2)]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]

    # THEN both used the authenticated Redis: the version key, a cached entry, a hit, and no Redis error
    assert health["cache"] == "ok", (health, output)
    assert [a.status_code for a in answers] == [200, 200]
    client = auth_redis.client()
    version = int(client.get(f"{key_prefix}:data_version"))
    assert client.get(f"{key_prefix}:v{version}:advisor_load:a1:2024-03-01:2024-03-07") == answers[0].content
    assert 'advising_cache_hits_total{kind="advisor_load"} 1' in metrics
    assert "advising_cache_errors_total{" not in metrics
    assert TOKEN not in output


def test_an_unreadable_secret_is_one_line_before_serving(capsys, aws_env, auth_redis):
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:advising/no-such-token"
    code = main(["serve", "--database-url", "postgresql://db", "--redis-url", auth_redis.url, "--redis-auth-secret", missing])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"cannot read the Redis AUTH token from secret {missing}" in err and "\n" not in err


def test_the_template_gives_elasticache_and_the_task_the_same_secret():
    template, errors = decode(str(TEMPLATE))
    assert not errors, errors
    resources = template["Resources"]
    secret = resources["CacheAuthToken"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["ExcludePunctuation"] is True
    cache = resources["Cache"]["Properties"]
    assert cache["AuthToken"] == {"Fn::Sub": "{{resolve:secretsmanager:${CacheAuthToken}}}"}
    assert cache["TransitEncryptionEnabled"] is True  # ElastiCache accepts AUTH only with TLS
    [container] = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert {"Name": "REDIS_AUTH_SECRET_ARN", "Value": {"Ref": "CacheAuthToken"}} in container["Environment"]
    [policy] = resources["TaskRole"]["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Sid": "ReadCacheAuthToken", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "CacheAuthToken"}}
    ]
