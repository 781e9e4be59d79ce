"""How the read API is run: `advising serve` as a real process, its misuse errors, the Dockerfile and the
CloudFormation stack (checked by cfn-lint and for the properties the design relies on)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cfnlint.decode import decode
from read_api_support import advisor_row, trend_row, wait_for_health

from advising.cli import main
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "read-api.yaml"


def test_advising_serve_runs_the_api_and_stops_on_sigterm(publish_tables, db_url, redis_url, key_prefix):
    published = publish_tables([advisor_row("a1", "2024-03-04")], [trend_row("Math", "2024-03-04")], redis_url=redis_url, key_prefix=key_prefix)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "CACHE_KEY_PREFIX": key_prefix}
    proc = subprocess.Popen([sys.executable, "-m", "advising.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = wait_for_health(port, proc)
        assert health == {"status": "ok", "database": "ok", "cache": "ok", "data_version": published.version}
        load = httpx.get(f"http://127.0.0.1:{port}/advisors/a1/load", params={"from": "2024-03-01", "to": "2024-03-07"})
        assert load.status_code == 200 and load.json()["days"][0]["advisor_id"] == "a1"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    # uvicorn shuts down gracefully, then re-raises the signal (exit status "killed by SIGTERM", as is customary)
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in output, output


@pytest.mark.parametrize(
    "argv, env, message",
    [
        (["serve"], {}, "--database-url (or $DATABASE_URL) is required"),
        (["serve", "--database-url", "postgresql://db"], {}, "--redis-url (or $REDIS_URL) is required unless --no-cache"),
        (["serve", "--port", "http"], {"DATABASE_URL": "postgresql://db"}, "--port must be a number"),
        (["serve", "--no-cache", "--cache-ttl", "-1"], {"DATABASE_URL": "postgresql://db"}, "--cache-ttl must be at least"),
        (["serve", "--redis-url", "http://cache"], {"DATABASE_URL": "postgresql://db"}, "redis:// or rediss://"),
    ],
)
def test_serve_misuse_fails_with_one_line(monkeypatch, capsys, argv, env, message):
    for name in ("DATABASE_URL", "REDIS_URL", "CACHE_TTL_SECONDS", "CACHE_JITTER_SECONDS", "CACHE_KEY_PREFIX", "DB_POOL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_the_template_passes_cfn_lint():
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_template_wires_what_the_api_relies_on():
    template, errors = decode(str(TEMPLATE))
    assert not errors
    resources = template["Resources"]
    cache = resources["Cache"]["Properties"]
    assert cache["TransitEncryptionEnabled"] is True and cache["AtRestEncryptionEnabled"] is True
    assert cache["AutomaticFailoverEnabled"] is True

    container = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["REDIS_URL"]["Fn::Sub"].startswith("rediss://")  # TLS, because transit encryption is on
    assert container["Secrets"] == [{"Name": "DATABASE_URL", "ValueFrom": {"Ref": "DatabaseUrlSecretArn"}}]
    assert container["HealthCheck"]["Command"][0] == "CMD" and "/health" in json.dumps(container["HealthCheck"])
    assert resources["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"

    # least privilege: the only "*" is ecr:GetAuthorizationToken, which has no resource-level permissions
    statements = resources["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    wildcard = [s for s in statements if isinstance(s, dict) and s.get("Resource") == "*"]
    assert [s["Action"] for s in wildcard] == ["ecr:GetAuthorizationToken"]
    # the task's own role reads one secret, the Redis AUTH token (see test_api_redis_auth.py)
    [task_policy] = resources["TaskRole"]["Properties"]["Policies"]
    assert [s["Resource"] for s in task_policy["PolicyDocument"]["Statement"]] == [{"Ref": "CacheAuthToken"}]


def test_the_dockerfile_runs_advising_serve_as_a_non_root_user():
    lines = [line.strip() for line in (ROOT / "api" / "Dockerfile").read_text().splitlines()]
    assert lines[next(i for i, line in enumerate(lines) if line.startswith("FROM"))].startswith("FROM python:3.11-slim")
    assert any('".[api]"' in line for line in lines if line.startswith("RUN pip install"))
    user = [line for line in lines if line.startswith("USER ")]
    assert user and not user[-1].split()[1].startswith(("root", "0"))
    assert lines[-1] == 'CMD ["advising", "serve", "--host", "0.0.0.0", "--port", "8080"]'
