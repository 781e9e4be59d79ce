"""Settings of the read API and of `advising publish-db`: one typed object each, built from flags and environment.

Nothing here is read at import time; `advising serve` / `advising publish-db` build these objects from their
parsed flags (falling back to the environment, which is how the ECS task definition configures the service).
The Redis AUTH token is read from Secrets Manager once, when the object is built at start
(`--redis-auth-secret` / $REDIS_AUTH_SECRET_ARN, infra/read-api.yaml), and never printed.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import urlparse

from common.errors import UsageError

DATABASE_URL_ENV = "DATABASE_URL"
REDIS_URL_ENV = "REDIS_URL"
CACHE_TTL_ENV = "CACHE_TTL_SECONDS"
CACHE_JITTER_ENV = "CACHE_JITTER_SECONDS"
KEY_PREFIX_ENV = "CACHE_KEY_PREFIX"
DB_POOL_SIZE_ENV = "DB_POOL_SIZE"
REDIS_AUTH_SECRET_ENV = "REDIS_AUTH_SECRET_ARN"

DEFAULT_KEY_PREFIX = "advising"


def check_database_url(url: Optional[str]) -> str:
    if not url:
        raise UsageError(f"--database-url (or ${DATABASE_URL_ENV}) is required, e.g. postgresql://user@host:5432/db")
    if urlparse(url).scheme not in ("postgresql", "postgres"):
        raise UsageError(f"--database-url must be a postgresql:// URL, got {_redact(url)!r}")
    return url


def check_redis_url(url: str) -> str:
    if urlparse(url).scheme not in ("redis", "rediss"):
        raise UsageError(f"--redis-url must be a redis:// or rediss:// URL, got {_redact(url)!r}")
    return url


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def read_redis_auth_token(secret_id: str) -> str:
    """The AUTH token held (as the whole SecretString) by a Secrets Manager secret. The region is the ARN's,
    else the environment's; the credentials are the task role's (or the environment's)."""
    import boto3
    import botocore.exceptions

    parts = secret_id.split(":")
    region = parts[3] if secret_id.startswith("arn:") and len(parts) > 3 else None
    try:
        token = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_id).get("SecretString")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise UsageError(f"cannot read the Redis AUTH token from secret {secret_id}: {exc}") from None
    if not token:
        raise UsageError(f"secret {secret_id} holds no SecretString; store the Redis AUTH token as its plain text")
    return token


def _redis_password(ns: argparse.Namespace, env: Mapping[str, str]) -> Optional[str]:
    secret_id = _pick(getattr(ns, "redis_auth_secret", None), env, REDIS_AUTH_SECRET_ENV)
    return read_redis_auth_token(secret_id) if secret_id else None


def _number(text: str, flag: str, *, minimum: float, kind=float):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} must be a number, got {text!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise UsageError(f"{flag} must be at least {minimum}, got {text!r}")
    return value


def _pick(flag_value, env: Mapping[str, str], name: str, default=None):
    if flag_value is not None:
        return flag_value
    return env.get(name) or default


@dataclass(frozen=True)
class ApiConfig:
    """Everything one API process needs. Durations are in seconds."""

    database_url: str
    redis_url: Optional[str]
    cache_enabled: bool = True
    # Redis AUTH token (from Secrets Manager); None for a Redis without AUTH. Kept out of repr and logs.
    redis_password: Optional[str] = field(default=None, repr=False)
    key_prefix: str = DEFAULT_KEY_PREFIX
    cache_ttl: float = 300.0
    # Each entry lives cache_ttl + uniform(0, cache_jitter): entries filled together do not expire together.
    cache_jitter: float = 30.0
    # Socket timeouts towards Redis: a sick Redis must cost milliseconds, not the request's whole budget.
    redis_timeout: float = 0.25
    # After a Redis failure the cache is bypassed for this long before Redis is tried again.
    redis_retry_after: float = 1.0
    # How often each process re-reads the data version from PostgreSQL, in case a publish could not reach Redis.
    version_check_interval: float = 5.0
    # Cross-process single flight: how long a loader holds the Redis lock, and how long others wait for its value.
    lock_ttl: float = 5.0
    lock_wait: float = 2.0
    # Unknown ids: cached this long, and at most this many at a time (random ids must not fill Redis).
    negative_ttl: float = 30.0
    max_negative_entries: int = 10_000
    max_range_days: int = 366
    db_pool_size: int = 10
    statement_timeout_ms: int = 5000
    host: str = "127.0.0.1"
    port: int = 8080
    access_log: bool = False

    def __post_init__(self) -> None:
        check_database_url(self.database_url)
        if self.cache_enabled:
            if not self.redis_url:
                raise UsageError(f"--redis-url (or ${REDIS_URL_ENV}) is required unless --no-cache is given")
            check_redis_url(self.redis_url)
        if not self.key_prefix or any(c.isspace() for c in self.key_prefix):
            raise UsageError(f"the cache key prefix must be a non-empty word, got {self.key_prefix!r}")
        if not 0 < self.port < 65536:
            raise UsageError(f"--port must be between 1 and 65535, got {self.port}")
        if self.cache_ttl <= 0:
            raise UsageError(f"--cache-ttl must be positive, got {self.cache_ttl}")

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace, env: Optional[Mapping[str, str]] = None) -> "ApiConfig":
        env = os.environ if env is None else env
        redis_url = _pick(ns.redis_url, env, REDIS_URL_ENV)
        return cls(
            database_url=check_database_url(_pick(ns.database_url, env, DATABASE_URL_ENV)),
            redis_url=redis_url,
            cache_enabled=not ns.no_cache,
            redis_password=_redis_password(ns, env) if not ns.no_cache else None,
            key_prefix=_pick(ns.key_prefix, env, KEY_PREFIX_ENV, DEFAULT_KEY_PREFIX),
            cache_ttl=_number(_pick(ns.cache_ttl, env, CACHE_TTL_ENV, "300"), "--cache-ttl", minimum=0.001),
            cache_jitter=_number(_pick(ns.cache_jitter, env, CACHE_JITTER_ENV, "30"), "--cache-jitter", minimum=0),
            db_pool_size=_number(_pick(ns.db_pool_size, env, DB_POOL_SIZE_ENV, "10"), "--db-pool-size", minimum=1, kind=int),
            host=ns.host,
            port=_number(ns.port, "--port", minimum=1, kind=int),
            access_log=bool(ns.access_log),
        )


@dataclass(frozen=True)
class PublishConfig:
    """What `advising publish-db` needs: the pipeline's output root, the database, and optionally Redis to notify."""

    output: str
    database_url: str
    redis_url: Optional[str] = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    redis_password: Optional[str] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.output:
            raise UsageError("--output is required")
        check_database_url(self.database_url)
        if self.redis_url:
            check_redis_url(self.redis_url)

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace, env: Optional[Mapping[str, str]] = None) -> "PublishConfig":
        env = os.environ if env is None else env
        redis_url = _pick(ns.redis_url, env, REDIS_URL_ENV)
        return cls(
            output=ns.output,
            database_url=check_database_url(_pick(ns.database_url, env, DATABASE_URL_ENV)),
            redis_url=redis_url,
            key_prefix=_pick(ns.key_prefix, env, KEY_PREFIX_ENV, DEFAULT_KEY_PREFIX),
            redis_password=_redis_password(ns, env) if redis_url else None,
        )
