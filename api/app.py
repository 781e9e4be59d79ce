"""The read API over HTTP (FastAPI on uvicorn): advisor load and department trends, served cache-aside.

    GET /advisors/{advisor_id}/load?from=YYYY-MM-DD&to=YYYY-MM-DD
    GET /departments/{department}/trends?from=YYYY-MM-DD&to=YYYY-MM-DD
    GET /health     200 while PostgreSQL answers ("degraded" if Redis does not), 503 otherwise
    GET /metrics    Prometheus text format

Errors are JSON `{"error": code, "message": text}`: 400 for bad parameters, 404 for unknown ids and paths,
503 when PostgreSQL is unavailable or nothing was published yet. Handlers are plain functions, which
FastAPI runs on its thread pool; the cache (api/cache.py) and the database pool (api/db.py) are thread-safe.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
import unicodedata
from contextlib import asynccontextmanager
from typing import Callable, Optional, Tuple

import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.cache import CacheSettings, Loaded, ReadCache, connect_redis
from api.config import ApiConfig
from api.db import UNAVAILABLE, Database, Rows
from api.metrics import CONTENT_TYPE, ApiMetrics

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 200


class BadRequest(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_range(start: Optional[str], end: Optional[str], max_days: int) -> Tuple[dt.date, dt.date]:
    """The inclusive date range of `?from=&to=`, or BadRequest."""
    dates = []
    for name, text in (("from", start), ("to", end)):
        if not text:
            raise BadRequest(f"query parameter '{name}' is required (YYYY-MM-DD)")
        try:
            if len(text) != 10:
                raise ValueError
            dates.append(dt.date.fromisoformat(text))
        except ValueError:
            raise BadRequest(f"query parameter '{name}' must be a date in YYYY-MM-DD form, got {text!r}") from None
    first, last = dates
    if first > last:
        raise BadRequest(f"'from' ({first}) is after 'to' ({last})")
    if (last - first).days + 1 > max_days:
        raise BadRequest(f"the range spans {(last - first).days + 1} days; at most {max_days} are allowed")
    return first, last


def check_id(value: str, what: str) -> str:
    # No id has control characters, and PostgreSQL refuses a NUL in text (a 500 before issue 15); lone
    # surrogates (from undecodable escapes) cannot be encoded for the database either.
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise BadRequest(f"{what} must not contain control characters or undecodable bytes")
    if not value.strip() or len(value) > MAX_ID_LENGTH:
        raise BadRequest(f"{what} must be 1 to {MAX_ID_LENGTH} characters")
    return value


def render(id_field: str, id_value: str, first: dt.date, last: dt.date, rows: Rows) -> Loaded:
    """The response body for one query result (None for an unknown id)."""
    if not rows.known:
        return Loaded(rows.version, None)
    body = {id_field: id_value, "from": first.isoformat(), "to": last.isoformat(), "data_version": rows.version, "days": rows.days}
    return Loaded(rows.version, json.dumps(body, separators=(",", ":")).encode())


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def create_app(config: ApiConfig, clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """The app; `clock` (seconds, monotonic) drives the cache's timers: the Redis cool-down and version checks."""
    metrics = ApiMetrics()
    db = Database(config.database_url, metrics, pool_size=config.db_pool_size, statement_timeout_ms=config.statement_timeout_ms)
    client = connect_redis(config.redis_url, config.redis_timeout, config.redis_password) if config.cache_enabled else None
    cache = ReadCache(
        client,
        db.current_version,
        CacheSettings(
            prefix=config.key_prefix,
            ttl=config.cache_ttl,
            jitter=config.cache_jitter,
            retry_after=config.redis_retry_after,
            version_check_interval=config.version_check_interval,
            lock_ttl=config.lock_ttl,
            lock_wait=config.lock_wait,
            negative_ttl=config.negative_ttl,
            max_negative=config.max_negative_entries,
        ),
        metrics,
        clock,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        db.open()
        try:
            yield
        finally:
            db.close()
            if client is not None:
                client.close()

    app = FastAPI(title="Advising read API", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics, app.state.db, app.state.cache = metrics, db, cache

    def serve(kind: str, ident: str, start: Optional[str], end: Optional[str], what: str,
              query: Callable[[str, dt.date, dt.date], Rows], id_field: str) -> Response:
        check_id(ident, what)
        first, last = parse_range(start, end, config.max_range_days)
        body = cache.get_or_load(
            kind, (ident, first.isoformat(), last.isoformat()), lambda: render(id_field, ident, first, last, query(ident, first, last))
        )
        if body is None:
            return _error(404, f"unknown_{what}", f"no data for {what} {ident!r}")
        return Response(body, media_type="application/json")

    @app.get("/advisors/{advisor_id}/load")
    def advisor_load(advisor_id: str, start: Optional[str] = Query(None, alias="from"), end: Optional[str] = Query(None, alias="to")):
        return serve("advisor_load", advisor_id, start, end, "advisor", db.advisor_load, "advisor_id")

    @app.get("/departments/{department}/trends")
    def department_trends(department: str, start: Optional[str] = Query(None, alias="from"), end: Optional[str] = Query(None, alias="to")):
        return serve("department_trends", department, start, end, "department", db.department_trends, "department")

    @app.get("/health")
    def health():
        try:
            version = db.current_version("health")
        except (*UNAVAILABLE, psycopg.errors.UndefinedTable) as exc:
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__, "cache": cache.status()}, status_code=503)
        cache_state = cache.status()
        status = "degraded" if cache_state == "down" else "ok"
        return {"status": status, "database": "ok", "cache": cache_state, "data_version": version}

    @app.get("/metrics")
    def metrics_endpoint():
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.exception_handler(BadRequest)
    async def bad_request(_request: Request, exc: BadRequest):
        return _error(400, "bad_request", exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError):
        return _error(400, "bad_request", "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def not_published(_request: Request, _exc: Exception):
        return _error(503, "not_published", "no data has been published yet: run `advising publish-db`")

    for unavailable in UNAVAILABLE:
        @app.exception_handler(unavailable)
        async def database_unavailable(_request: Request, exc: Exception):
            log.error("database unavailable: %s", exc)
            return _error(503, "database_unavailable", "the database is unavailable; retry shortly")

    return app
