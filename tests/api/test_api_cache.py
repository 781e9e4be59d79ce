"""The cache-aside layer against real Redis and PostgreSQL, through the HTTP API: hits and misses, TTL and
jitter, version bumps, single flight (in one process and across two), and Redis dying mid-test."""
from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis
from read_api_support import advisor_row, api_config, trend_row

LOAD = "/advisors/a1/load"
WEEK = {"from": "2024-03-04", "to": "2024-03-10"}


def data(scheduled: int = 4):
    return [advisor_row("a1", "2024-03-04", scheduled_count=scheduled), advisor_row("a2", "2024-03-04")], [trend_row("Math", "2024-03-04")]


def db_queries(api, query: str = "advisor_load") -> int:
    return int(api.metrics.db_queries.value(query))


@functools.cache
def http() -> httpx.Client:
    """One client (thread-safe, pooled) for every request: creating a client per request costs more than the request."""
    return httpx.Client(timeout=10, limits=httpx.Limits(max_connections=100))


def get(api, path: str = LOAD, params=WEEK) -> httpx.Response:
    response = http().get(api.url + path, params=params)
    assert response.status_code in (200, 404), response.text
    return response


def scheduled(response: httpx.Response) -> int:
    return response.json()["days"][0]["scheduled_count"]


def concurrently(n: int, fn):
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_miss_then_hit_with_versioned_key_and_ttl(publish_tables, start_api, db_url, redis_url, key_prefix):
    published = publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=60, cache_jitter=10))

    first, second = get(api), get(api)

    assert first.json() == second.json() and scheduled(first) == 4
    assert db_queries(api) == 1
    assert api.metrics.cache_misses.value("advisor_load") == 1 and api.metrics.cache_hits.value("advisor_load") == 1
    client = redis.Redis.from_url(redis_url)
    key = f"{key_prefix}:v{published.version}:advisor_load:a1:2024-03-04:2024-03-10"
    assert client.get(key) == first.content
    assert 55_000 < client.pttl(key) <= 70_000


def test_jitter_spreads_expiry(publish_tables, start_api, db_url, redis_url, key_prefix):
    publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=100, cache_jitter=50))
    for day in range(1, 11):
        get(api, params={"from": "2024-03-01", "to": f"2024-03-{day:02d}"})

    client = redis.Redis.from_url(redis_url)
    ttls = [client.pttl(k) for k in client.scan_iter(f"{key_prefix}:v*:advisor_load:*")]
    assert len(ttls) == 10 and all(95_000 < t <= 150_000 for t in ttls)
    assert max(ttls) - min(ttls) > 5_000  # ten uniform draws over 50 s spread this far except with p ~ 1e-8


def test_unknown_ids_are_cached_too(publish_tables, start_api, db_url, redis_url, key_prefix):
    publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix))
    assert [get(api, "/advisors/ghost/load").status_code for _ in range(3)] == [404, 404, 404]
    assert db_queries(api) == 1


def test_entries_expire_after_their_ttl(publish_tables, start_api, db_url, redis_url, key_prefix):
    publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=1.0, cache_jitter=0.0))

    get(api), get(api)
    assert db_queries(api) == 1
    time.sleep(1.3)
    get(api), get(api)
    assert db_queries(api) == 2
    assert api.metrics.cache_misses.value("advisor_load") == 2 and api.metrics.cache_hits.value("advisor_load") == 2


def test_a_new_publish_makes_old_entries_unreachable_at_once(publish_tables, start_api, db_url, redis_url, key_prefix):
    first = publish_tables(*data(scheduled=4), redis_url=redis_url, key_prefix=key_prefix)
    # a long TTL and version check: only the version bump can make the new data visible
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=600, version_check_interval=600))
    assert scheduled(get(api)) == 4 and scheduled(get(api)) == 4

    second = publish_tables(*data(scheduled=9), redis_url=redis_url, key_prefix=key_prefix)
    after = get(api)

    assert second.version > first.version
    assert scheduled(after) == 9 and after.json()["data_version"] == second.version
    assert db_queries(api) == 2
    # the old entry is still in Redis (it ages out by its TTL) but no longer reachable
    assert redis.Redis.from_url(redis_url).exists(f"{key_prefix}:v{first.version}:advisor_load:a1:2024-03-04:2024-03-10")


def test_a_publish_that_could_not_reach_redis_is_seen_within_the_version_check(publish_tables, start_api, db_url, redis_url, key_prefix):
    publish_tables(*data(scheduled=4), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=600, version_check_interval=0.5))
    assert scheduled(get(api)) == 4

    publish_tables(*data(scheduled=9))  # no Redis URL: Redis keeps the old version
    time.sleep(0.6)
    assert scheduled(get(api)) == 9


def test_fifty_concurrent_requests_for_a_cold_key_query_the_database_once(publish_tables, start_api, db_url, redis_url, key_prefix):
    publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix))
    get(api, "/departments/Math/trends", params=WEEK)  # warm the connection pools, not the key

    responses = concurrently(50, lambda _: get(api))

    assert {r.content for r in responses} == {responses[0].content} and scheduled(responses[0]) == 4
    assert db_queries(api) == 1
    m = api.metrics
    assert m.cache_misses.value("advisor_load") + m.cache_hits.value("advisor_load") + m.cache_coalesced.value("advisor_load") == 50


def test_two_processes_share_one_load_through_the_redis_lock(publish_tables, start_api, db_url, redis_url, key_prefix):
    publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    apis = [start_api(api_config(db_url, redis_url, key_prefix)) for _ in range(2)]
    for api in apis:
        get(api, "/departments/Math/trends", params=WEEK)

    responses = concurrently(40, lambda i: get(apis[i % 2]))

    assert {r.content for r in responses} == {responses[0].content}
    assert sum(db_queries(api) for api in apis) == 1


def test_redis_stopped_mid_test_the_api_answers_from_postgres_and_recovers(publish_tables, start_api, db_url, private_redis, key_prefix):
    publish_tables(*data(), redis_url=private_redis.url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, private_redis.url, key_prefix, redis_retry_after=0.3))
    expected = get(api).content
    assert get(api).content == expected and api.metrics.cache_hits.value("advisor_load") == 1

    private_redis.stop()
    started = time.monotonic()
    answers = [get(api) for _ in range(5)] + concurrently(20, lambda _: get(api))
    elapsed = time.monotonic() - started

    assert all(r.status_code == 200 and r.content == expected for r in answers)
    assert get(api, "/advisors/a2/load").json()["days"][0]["advisor_id"] == "a2"
    m = api.metrics
    assert m.cache_errors.total() >= 1 and m.redis_up.value() == 0 and m.cache_bypass.value("advisor_load") >= 1
    assert m.cache_hits.value("advisor_load") == 1  # nothing more came from Redis
    assert elapsed < 5  # failures are fast: no waiting on timeouts per request
    health = httpx.get(f"{api.url}/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded" and health.json()["cache"] == "down"
    assert "advising_cache_redis_up 0" in httpx.get(f"{api.url}/metrics").text

    private_redis.start()  # same port, empty: no version key, no entries
    time.sleep(0.4)
    hits_before = m.cache_hits.value("advisor_load")
    assert get(api).content == expected and get(api).content == expected
    assert m.cache_hits.value("advisor_load") == hits_before + 1 and m.redis_up.value() == 1
