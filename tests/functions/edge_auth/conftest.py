"""Fixtures for the edge auth tests: real RSA keys, tokens signed with them, CloudFront events.

Keys are generated here with `cryptography` (never committed); tokens are assembled by hand so a
test can set any header or claim, including the ones a well-behaved library would refuse to emit.
"""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from functions.edge_auth.config import EdgeConfig

NOW = 1_800_000_000
REGION = "eu-west-1"
POOL_ID = "eu-west-1_TestPool1"
CLIENT_ID = "4testclient0id0abcdefghijk"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
KID = "test-key-1"
COOKIE = "reports_token"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()

    def encode(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": encode(numbers.n), "e": encode(numbers.e)}


def config_dict(jwk: dict[str, str], **overrides: Any) -> dict[str, Any]:
    raw = {
        "region": REGION,
        "user_pool_id": POOL_ID,
        "app_client_id": CLIENT_ID,
        "token_use": "id",
        "cookie_name": COOKIE,
        "leeway_seconds": 30,
        "group_rules": {"/reports/": "analysts", "/extracts/": "analysts", "/extracts/restricted/": "data-stewards"},
        "jwks": {"keys": [jwk]},
    }
    raw.update(overrides)
    return raw


class Tokens:
    """Builds compact JWS strings; `sign` with the pool's key unless told otherwise."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key

    @staticmethod
    def id_claims(**overrides: Any) -> dict[str, Any]:
        claims = {
            "sub": "0b6f7c1e-3f5a-4b8e-9d2c-7a1e5f3c9b10",
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "token_use": "id",
            "cognito:groups": ["analysts"],
            "cognito:username": "a.analyst",
            "auth_time": NOW - 60,
            "iat": NOW - 60,
            "exp": NOW + 3600,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    @staticmethod
    def access_claims(**overrides: Any) -> dict[str, Any]:
        claims = Tokens.id_claims(**{"token_use": "access", "client_id": CLIENT_ID, "scope": "openid", **overrides})
        claims.pop("aud")
        return claims

    @staticmethod
    def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
        """header.payload, the signing input."""
        return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None, key: rsa.RSAPrivateKey | None = None) -> str:
        signing_input = self.unsigned(header or {"kid": KID, "alg": "RS256"}, claims)
        signature = (key or self.key).sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def id_token(self, **overrides: Any) -> str:
        return self.sign(self.id_claims(**overrides))


def _viewer_request(uri: str = "/reports/2026/advisor_daily_load.parquet", **headers: str | list[str]) -> dict[str, Any]:
    """CloudFront's documented viewer-request event; header names given in lower case."""
    cf_headers: dict[str, list[dict[str, str]]] = {
        "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
        "user-agent": [{"key": "User-Agent", "value": "curl/8.5.0"}],
    }
    display = {"authorization": "Authorization", "cookie": "Cookie"}
    for name, value in headers.items():
        values = value if isinstance(value, list) else [value]
        cf_headers[name] = [{"key": display.get(name, name), "value": item} for item in values]
    return {
        "Records": [
            {
                "cf": {
                    "config": {
                        "distributionDomainName": "d111111abcdef8.cloudfront.net",
                        "distributionId": "EDFDVBD6EXAMPLE",
                        "eventType": "viewer-request",
                        "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                    },
                    "request": {
                        "clientIp": "203.0.113.178",
                        "headers": cf_headers,
                        "method": "GET",
                        "querystring": "",
                        "uri": uri,
                    },
                }
            }
        ]
    }


@pytest.fixture(scope="session")
def pool_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def stranger_key() -> rsa.RSAPrivateKey:
    """A key the pool does not publish."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def pool_config_dict(pool_key) -> dict[str, Any]:
    return config_dict(public_jwk(pool_key, KID))


@pytest.fixture(scope="session")
def edge_config(pool_config_dict) -> EdgeConfig:
    return EdgeConfig.from_dict(pool_config_dict)


@pytest.fixture(scope="session")
def tokens(pool_key) -> Tokens:
    return Tokens(pool_key)


@pytest.fixture(scope="session")
def now() -> int:
    """The clock every test runs at; token lifetimes are set relative to it."""
    return NOW


@pytest.fixture(scope="session")
def viewer_request():
    """Builds a viewer-request event: viewer_request(uri, authorization="Bearer ...", cookie="a=b")."""
    return _viewer_request


@pytest.fixture(scope="session")
def make_config_dict():
    """config_dict(jwk, **overrides): a valid configuration for the given public JWK."""
    return config_dict


@pytest.fixture(scope="session")
def make_public_jwk():
    return public_jwk
