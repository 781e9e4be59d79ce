"""Cache-aside in front of PostgreSQL: Redis first, the database on a miss, and the answer stored with a TTL.

Where it sits: the HTTP handlers (api/app.py) call `ReadCache.get_or_load(kind, parts, load)`; `load` runs
the PostgreSQL query (api/db.py) and renders the response body, which is what Redis stores.

- Versioned keys: `{prefix}:v{version}:{kind}:{parts...}`. `advising publish-db` raises the version key
  `{prefix}:data_version` right after its commit, so the next lookup builds keys of the new version and every
  old entry is unreachable at once (it then ages out by its TTL). Each process also re-reads the version from
  PostgreSQL every few seconds, in case a publish could not reach Redis. The version key only ever goes up.
- A loaded result is stored under the version the database returned with it (same snapshot), never under a
  version it does not belong to.
- TTL plus uniform jitter, so entries filled together do not expire together.
- Single flight: identical concurrent lookups in one process share one load (in-process coalescing); across
  processes, the loader holds a Redis lock (SET NX PX) and the others wait for its value.
- Unknown ids are cached too (an empty value), so a flood of requests for a missing id does not reach the DB;
  but only for `negative_ttl` seconds and at most `max_negative` such entries at a time (one shared counter
  per window, whose expiry every entry of that window shares), so random ids cannot grow Redis without bound
  (issue 15). Beyond the cap an unknown id is answered from PostgreSQL without being stored.
- Redis down: every Redis call has a short socket timeout; a failure is counted, logged (once per outage)
  and opens a short circuit during which lookups go straight to PostgreSQL (still coalesced).
"""
from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional, Sequence
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.metrics import ApiMetrics

log = logging.getLogger(__name__)

# Raise the version key to ARGV[1] unless it is already higher; returns the resulting version.
_RAISE_VERSION = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""

# Delete the lock only if we still own it (it may have expired and been taken by another loader).
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Store a not-found entry (KEYS[2]) unless this window's count (KEYS[1]) already reached ARGV[2]. The window
# lasts ARGV[1] ms from its first entry and each entry expires with it, so at most ARGV[2] are ever alive.
_STORE_NOT_FOUND = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if count > tonumber(ARGV[2]) then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
return 1
"""

_NOT_FOUND = b""  # the stored value for "this id has no rows at all"


def connect_redis(url: str, timeout: float, password: Optional[str] = None) -> redis.Redis:
    """A Redis client that fails fast: short timeouts and one immediate retry (which replaces a pooled
    connection that died, e.g. after a Redis restart), no backoff. `password` is the AUTH token."""
    return redis.Redis.from_url(
        url, password=password, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
    )


def version_key(prefix: str) -> str:
    return f"{prefix}:data_version"


def negatives_key(prefix: str) -> str:
    """The counter of not-found entries stored in the current window."""
    return f"{prefix}:not_found_window"


def raise_version(client: redis.Redis, prefix: str, version: int) -> int:
    """Make Redis' data version at least `version`; returns the version Redis now holds."""
    return int(client.eval(_RAISE_VERSION, 1, version_key(prefix), str(version)))


class Loaded(NamedTuple):
    version: int  # the data version the database returned with the rows
    body: Optional[bytes]  # the response body; None when the id is unknown


class CacheUnavailable(Exception):
    """Redis failed or is in its cool-down after a failure: answer from PostgreSQL."""


@dataclass(frozen=True)
class CacheSettings:
    prefix: str
    ttl: float
    jitter: float
    retry_after: float
    version_check_interval: float
    lock_ttl: float
    lock_wait: float
    negative_ttl: float
    max_negative: int


class _Guard:
    """Runs Redis commands, counts and logs failures, and skips Redis for `retry_after` seconds after one."""

    def __init__(self, retry_after: float, metrics: ApiMetrics, clock: Callable[[], float]):
        self._retry_after = retry_after
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._outage_errors = 0  # errors in the current outage, 0 while Redis is up

    def run(self, op: str, fn: Callable, *args, **kwargs):
        if self._clock() < self._down_until:
            raise CacheUnavailable(op)
        try:
            result = fn(*args, **kwargs)
        except redis.RedisError as exc:
            self._failed(op, exc)
            raise CacheUnavailable(op) from exc
        if self._outage_errors:
            self._recovered()
        return result

    def _failed(self, op: str, exc: Exception) -> None:
        self._metrics.cache_errors.inc(op)
        self._metrics.redis_up.set(0)
        with self._lock:
            self._down_until = self._clock() + self._retry_after
            self._outage_errors += 1
            first = self._outage_errors == 1
        if first:  # one warning per outage, not one per request
            log.warning("Redis unavailable (%s: %s): answering from PostgreSQL, retrying Redis every %.1fs",
                        type(exc).__name__, exc, self._retry_after)

    def _recovered(self) -> None:
        with self._lock:
            errors, self._outage_errors = self._outage_errors, 0
        if errors:
            self._metrics.redis_up.set(1)
            log.warning("Redis answers again after %d failed operation(s): cache back in use", errors)


class _Versions:
    """The current data version, from Redis' version key, re-read from PostgreSQL periodically or when absent."""

    def __init__(self, client: redis.Redis, guard: _Guard, read_db_version: Callable[[], int], settings: CacheSettings,
                 clock: Callable[[], float]):
        self._client = client
        self._guard = guard
        self._read_db_version = read_db_version
        self._key = version_key(settings.prefix)
        self._prefix = settings.prefix
        self._interval = settings.version_check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next_check = 0.0

    def current(self) -> int:
        if self._clock() < self._next_check:
            raw = self._guard.run("version", self._client.get, self._key)
            if raw is not None:
                return int(raw)
        with self._lock:  # one database read per process at a time; the others then find the key
            if self._clock() < self._next_check:
                raw = self._guard.run("version", self._client.get, self._key)
                if raw is not None:
                    return int(raw)
            version = self.raise_to(self._read_db_version())
            self._next_check = self._clock() + self._interval
            return version

    def raise_to(self, version: int) -> int:
        return self._guard.run("version", raise_version, self._client, self._prefix, version)


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Optional[bytes] = None
        self.error: Optional[BaseException] = None


class ReadCache:
    """Cache-aside lookups. `client=None` disables the cache: every lookup runs its load (the baseline)."""

    def __init__(self, client: Optional[redis.Redis], read_db_version: Callable[[], int], settings: CacheSettings,
                 metrics: ApiMetrics, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self._guard = _Guard(settings.retry_after, metrics, clock)
        self._versions = _Versions(client, self._guard, read_db_version, settings, clock) if client else None
        self._release = client.register_script(_RELEASE_LOCK) if client else None
        self._store_not_found = client.register_script(_STORE_NOT_FOUND) if client else None
        self._clock = clock
        self._flights: Dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def status(self) -> str:
        """'ok', 'down' or 'disabled', for /health."""
        if not self.enabled:
            return "disabled"
        try:
            self._guard.run("ping", self._client.ping)
            return "ok"
        except CacheUnavailable:
            return "down"

    def get_or_load(self, kind: str, parts: Sequence[str], load: Callable[[], Loaded]) -> Optional[bytes]:
        """The body for (kind, parts): from Redis, or from `load` (at most one concurrent load per process)."""
        if not self.enabled:
            return load().body
        name = ":".join([kind, *(quote(p, safe="") for p in parts)])
        with self._flights_lock:
            flight = self._flights.get(name)
            leader = flight is None
            if leader:
                flight = self._flights[name] = _Flight()
        if not leader:
            self._metrics.cache_coalesced.inc(kind)
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result
        try:
            flight.result = self._lookup(kind, name, load)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                del self._flights[name]
            flight.done.set()

    def _lookup(self, kind: str, name: str, load: Callable[[], Loaded]) -> Optional[bytes]:
        try:
            version = self._versions.current()
            key = f"{self._settings.prefix}:v{version}:{name}"
            cached = self._guard.run("get", self._client.get, key)
        except CacheUnavailable:
            self._metrics.cache_bypass.inc(kind)
            return load().body
        if cached is not None:
            self._metrics.cache_hits.inc(kind)
            return _decode(cached)
        self._metrics.cache_misses.inc(kind)
        return self._fill(key, version, name, load)

    def _fill(self, key: str, version: int, name: str, load: Callable[[], Loaded]) -> Optional[bytes]:
        lock_key, token = f"{key}:lock", secrets.token_hex(8)
        try:
            locked = self._guard.run("lock", self._client.set, lock_key, token, nx=True, px=int(self._settings.lock_ttl * 1000))
            cached = self._guard.run("get", self._client.get, key) if locked else self._wait_for(key)
        except CacheUnavailable:
            locked, cached = False, None
        if cached is not None:  # filled by another process meanwhile
            if locked:
                self._unlock(lock_key, token)
            return _decode(cached)
        try:
            loaded = load()
            self._store(loaded, version, name)
        finally:
            if locked:
                self._unlock(lock_key, token)
        return loaded.body

    def _wait_for(self, key: str) -> Optional[bytes]:
        """Another process holds the load lock: poll for its value, up to lock_wait (then load ourselves)."""
        deadline = self._clock() + self._settings.lock_wait
        while self._clock() < deadline:
            time.sleep(0.01)
            cached = self._guard.run("get", self._client.get, key)
            if cached is not None:
                return cached
        return None

    def _store(self, loaded: Loaded, looked_up_version: int, name: str) -> None:
        key = f"{self._settings.prefix}:v{loaded.version}:{name}"
        try:
            if loaded.body is None:
                self._store_negative(key, name.split(":", 1)[0])
            else:
                ttl_ms = int((self._settings.ttl + random.uniform(0, self._settings.jitter)) * 1000)
                self._guard.run("set", self._client.set, key, loaded.body, px=max(ttl_ms, 1))
            if loaded.version > looked_up_version:  # a publish that Redis has not heard of yet
                self._versions.raise_to(loaded.version)
        except CacheUnavailable:
            pass  # counted and logged by the guard; the answer itself is fine

    def _store_negative(self, key: str, kind: str) -> None:
        window_ms = max(int(self._settings.negative_ttl * 1000), 1)
        stored = self._guard.run("set", self._store_not_found, keys=[negatives_key(self._settings.prefix), key],
                                 args=[window_ms, self._settings.max_negative, _NOT_FOUND])
        if not stored:
            self._metrics.cache_not_found_uncached.inc(kind)

    def _unlock(self, lock_key: str, token: str) -> None:
        try:
            self._guard.run("unlock", self._release, keys=[lock_key], args=[token])
        except CacheUnavailable:
            pass  # the lock expires by itself


def _decode(value: bytes) -> Optional[bytes]:
    return None if value == _NOT_FOUND else value
