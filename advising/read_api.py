"""`advising publish-db` and `advising serve`: load the serving tables into PostgreSQL, and run the read API.

The code lives in the `api` package (Parquet -> PostgreSQL in api/publish.py; HTTP app, cache-aside layer
and queries in api/app.py, api/cache.py, api/db.py); this module only turns flags into their typed configs.
"""
from __future__ import annotations

import argparse
import sys

from api.config import (
    CACHE_JITTER_ENV,
    CACHE_TTL_ENV,
    DATABASE_URL_ENV,
    DB_POOL_SIZE_ENV,
    KEY_PREFIX_ENV,
    REDIS_AUTH_SECRET_ENV,
    REDIS_URL_ENV,
)


def register(subparsers) -> None:
    publish = subparsers.add_parser(
        "publish-db",
        help="load advisor_daily_load and booking_trends_daily into PostgreSQL for the read API",
        description="Replace the API's PostgreSQL tables with the Parquet tables under --output in one transaction, "
        "bump the data version if anything changed, and announce the version to Redis (if a Redis URL is set).",
    )
    publish.add_argument("--output", required=True, help="the pipeline's output root (local path)")
    publish.add_argument("--database-url", default=None, help=f"PostgreSQL URL (default: ${DATABASE_URL_ENV})")
    publish.add_argument("--redis-url", default=None, help=f"Redis to notify of the new version (default: ${REDIS_URL_ENV}; none: skip)")
    publish.add_argument("--redis-auth-secret", default=None, metavar="SECRET_ID",
                         help=f"Secrets Manager secret holding the Redis AUTH token (default: ${REDIS_AUTH_SECRET_ENV}; none: no AUTH)")
    publish.add_argument("--key-prefix", default=None, help=f"cache key prefix shared with the API (default: ${KEY_PREFIX_ENV} or advising)")
    publish.set_defaults(func=_publish)

    serve = subparsers.add_parser(
        "serve",
        help="run the read API (advisor load, department trends) with its Redis cache",
        description="Serve GET /advisors/{id}/load, /departments/{dept}/trends, /health and /metrics from PostgreSQL, "
        "cache-aside through Redis.",
    )
    serve.add_argument("--port", default="8080", help="TCP port (default: 8080)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; 0.0.0.0 in a container)")
    serve.add_argument("--database-url", default=None, help=f"PostgreSQL URL (default: ${DATABASE_URL_ENV})")
    serve.add_argument("--redis-url", default=None, help=f"Redis URL (default: ${REDIS_URL_ENV})")
    serve.add_argument("--redis-auth-secret", default=None, metavar="SECRET_ID",
                       help=f"Secrets Manager secret holding the Redis AUTH token (default: ${REDIS_AUTH_SECRET_ENV}; none: no AUTH)")
    serve.add_argument("--no-cache", action="store_true", help="answer every request from PostgreSQL (baseline for benchmarks)")
    serve.add_argument("--cache-ttl", default=None, metavar="SECONDS", help=f"entry lifetime (default: ${CACHE_TTL_ENV} or 300)")
    serve.add_argument("--cache-jitter", default=None, metavar="SECONDS", help=f"random extra lifetime, 0..this (default: ${CACHE_JITTER_ENV} or 30)")
    serve.add_argument("--key-prefix", default=None, help=f"cache key prefix (default: ${KEY_PREFIX_ENV} or advising)")
    serve.add_argument("--db-pool-size", default=None, help=f"PostgreSQL connections per process (default: ${DB_POOL_SIZE_ENV} or 10)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=_serve)


def _publish(args: argparse.Namespace) -> int:
    from api.config import PublishConfig
    from api.publish import publish

    result = publish(PublishConfig.from_namespace(args))
    rows = ", ".join(f"{name}={count}" for name, count in result.rows.items())
    state = f"version {result.version} ({result.changed_rows} row(s) changed)" if result.changed else f"unchanged, version {result.version} kept"
    notified = {None: "no Redis URL given", True: "Redis notified", False: "Redis NOT notified (API picks it up within seconds)"}
    print(f"published {rows}: {state}; {notified[result.redis_notified]}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from api.app import create_app
    from api.config import ApiConfig

    config = ApiConfig.from_namespace(args)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        access_log=config.access_log,
        log_level="info",
        timeout_graceful_shutdown=10,  # ECS sends SIGTERM, then SIGKILL after its stopTimeout
    )
    return 0
