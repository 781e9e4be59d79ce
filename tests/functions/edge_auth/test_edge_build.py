"""`advising edge build`: config validation, a deterministic zip under 1 MB, and a self-contained package."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from advising.cli import main
from functions.edge_auth.config import ConfigError, EdgeConfig

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_CONFIG = REPO / "functions" / "edge_auth" / "edge_auth.example.json"
LIMIT = 1_048_576


def build(config: Path, out: Path) -> int:
    return main(["edge", "build", "--config", str(config), "--out", str(out)])


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def test_example_config_builds_a_small_deterministic_zip(tmp_path, capsys):
    first, second = tmp_path / "a" / "edge-auth.zip", tmp_path / "edge-auth-again.zip"

    assert build(EXAMPLE_CONFIG, first) == 0
    printed = capsys.readouterr().out
    assert build(EXAMPLE_CONFIG, second) == 0

    size = first.stat().st_size
    assert size < LIMIT
    assert f"{first}: {size:,} bytes" in printed
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert set(names) == {
            "edge_auth/__init__.py",
            "edge_auth/config.py",
            "edge_auth/edge_config.json",
            "edge_auth/handler.py",
            "edge_auth/jwt_rs256.py",
        }
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        bundled = json.loads(archive.read("edge_auth/edge_config.json"))
    example = json.loads(EXAMPLE_CONFIG.read_text())
    assert EdgeConfig.from_dict(bundled) == EdgeConfig.from_dict(example)


def test_example_config_commits_public_keys_only():
    example = json.loads(EXAMPLE_CONFIG.read_text())

    for jwk in example["jwks"]["keys"]:
        assert set(jwk) <= {"kty", "kid", "use", "alg", "n", "e"}


def test_the_handler_runs_from_the_zip_alone(tmp_path, pool_config_dict, tokens, viewer_request):
    # The JWKS as a file next to the config, the other accepted form.
    write_json(tmp_path / "jwks.json", pool_config_dict["jwks"])
    config = write_json(tmp_path / "edge.json", {**pool_config_dict, "jwks": "jwks.json"})
    package = tmp_path / "edge-auth.zip"
    assert build(config, package) == 0
    issued = int(time.time())
    events = [
        viewer_request(authorization=f"Bearer {tokens.id_token(iat=issued, exp=issued + 600)}"),
        viewer_request(),
        viewer_request("/reports/x.parquet", authorization=f"Bearer {tokens.id_token(iat=issued, exp=issued + 600, **{'cognito:groups': ['advisors']})}"),
    ]
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from edge_auth.handler import handler\n"
        "import edge_auth.handler as module\n"
        "assert module.__file__.startswith(sys.argv[1]), module.__file__\n"
        "results = [handler(event, None) for event in json.load(sys.stdin)]\n"
        "third_party = sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'jwt', 'joserfc', 'functions'))\n"
        "print(json.dumps({'results': results, 'third_party': third_party}))\n"
    )

    # -I -S: no site-packages, no PYTHONPATH, no current directory; only the zip and the stdlib.
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(package)],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )

    output = json.loads(completed.stdout)
    forwarded, no_token, wrong_group = output["results"]
    assert output["third_party"] == []
    assert forwarded["uri"] == "/reports/2026/advisor_daily_load.parquet"
    assert "authorization" not in forwarded["headers"]
    assert no_token["status"] == "401"
    assert wrong_group["status"] == "403"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token_use": "refresh"}, "token_use"),
        ({"user_pool_id": "us-east-1_TestPool1"}, "user_pool_id"),
        ({"region": "europe"}, "region"),
        ({"app_client_id": "not a client"}, "app_client_id"),
        ({"group_rules": {"reports/": "analysts"}}, "must start with '/'"),
        ({"group_rules": {"/reports/": ""}}, "group_rules"),
        # Issue 15: rules are matched on decoded paths without dot segments; these could never match.
        ({"group_rules": {"/%72eports/": "analysts"}}, "%-escape"),
        ({"group_rules": {"/extracts%2Frestricted/": "data-stewards"}}, "%-escape"),
        ({"group_rules": {"/reports/../extracts/": "analysts"}}, "'..' segment"),
        ({"group_rules": {"/./reports/": "analysts"}}, "'.' or '..' segment"),
        ({"leeway_seconds": 3600}, "leeway_seconds"),
        ({"leeway_seconds": True}, "leeway_seconds"),
        ({"cookie_name": "bad cookie"}, "cookie_name"),
        ({"jwks": {"keys": []}}, "jwks"),
        ({"jwks": "missing-jwks.json"}, "jwks file"),
        ({"issuer": "https://example.com"}, "unknown field"),
    ],
)
def test_invalid_configs_fail_with_one_line(change, message, tmp_path, capsys, pool_config_dict):
    config = write_json(tmp_path / "edge.json", {**pool_config_dict, **change})
    out = tmp_path / "edge-auth.zip"

    assert build(config, out) == 2

    err = capsys.readouterr().err
    assert err.startswith("advising edge: error: ") and err.count("\n") == 1
    assert message in err
    assert not out.exists()


def test_duplicate_key_ids_are_refused(tmp_path, capsys, pool_config_dict):
    jwk = pool_config_dict["jwks"]["keys"][0]
    config = write_json(tmp_path / "edge.json", {**pool_config_dict, "jwks": {"keys": [jwk, jwk]}})

    assert build(config, tmp_path / "edge-auth.zip") == 2
    assert "appears twice" in capsys.readouterr().err


def test_unreadable_inputs_fail_with_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")

    assert build(tmp_path / "absent.json", tmp_path / "x.zip") == 2
    assert build(broken, tmp_path / "x.zip") == 2
    assert build(EXAMPLE_CONFIG, tmp_path) == 2

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith("advising edge: error: ") for line in lines)
    assert "does not exist" in lines[0] and "not valid JSON" in lines[1] and "is a directory" in lines[2]


def test_a_package_over_one_megabyte_is_refused(tmp_path, capsys, pool_config_dict):
    # Random moduli do not compress: a few thousand keys push the zip past the limit.
    def random_jwk(index: int) -> dict[str, str]:
        n = int.from_bytes(os.urandom(256), "big") | (1 << 2047) | 1
        encoded = base64.urlsafe_b64encode(n.to_bytes(256, "big")).rstrip(b"=").decode()
        return {"kty": "RSA", "kid": f"k{index}", "n": encoded, "e": "AQAB"}

    config = write_json(tmp_path / "edge.json", {**pool_config_dict, "jwks": {"keys": [random_jwk(i) for i in range(5000)]}})
    out = tmp_path / "edge-auth.zip"

    assert build(config, out) == 2

    err = capsys.readouterr().err
    assert "over the 1,048,576-byte limit" in err and err.count("\n") == 1
    assert not out.exists()


def test_normalised_config_round_trips(edge_config):
    assert EdgeConfig.from_dict(edge_config.to_dict()) == edge_config
    assert edge_config.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TestPool1"
    with pytest.raises(ConfigError):
        EdgeConfig.from_dict([])
