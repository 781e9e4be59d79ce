"""The cache-aside layer against real Redis and PostgreSQL, through the HTTP API: hits and misses, TTL and
jitter, version bumps, single flight (in one process and across two), bounded caching of unknown ids, and
Redis dying mid-test. No test waits for time to pass: expiry times are read on Redis' own clock, entries are
expired explicitly, and the API's timers run on a FakeClock the test advances."""
from __future__ import annotations

import functools
import random
import string
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis
from read_api_support import FakeClock, advisor_row, api_config, redis_now_ms, trend_row

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
    client = redis.Redis.from_url(redis_url)

    before = redis_now_ms(client)
    first = get(api)
    after = redis_now_ms(client)
    second = get(api)

    assert first.json() == second.json() and scheduled(first) == 4
    assert db_queries(api) == 1
    assert api.metrics.cache_misses.value("advisor_load") == 1 and api.metrics.cache_hits.value("advisor_load") == 1
    key = f"{key_prefix}:v{published.version}:advisor_load:a1:2024-03-04:2024-03-10"
    assert client.get(key) == first.content
    # stored between `before` and `after` with a TTL of 60 s plus 0..10 s of jitter
    assert before + 60_000 <= client.pexpiretime(key) <= after + 70_000


def test_jitter_spreads_expiry(publish_tables, start_api, db_url, redis_url, key_prefix):
    published = publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=100, cache_jitter=50))
    client = redis.Redis.from_url(redis_url)
    jitters = []  # (lowest, highest) jitter each entry can have got, from when it was stored
    for day in range(1, 11):
        before = redis_now_ms(client)
        get(api, params={"from": "2024-03-01", "to": f"2024-03-{day:02d}"})
        after = redis_now_ms(client)
        expires = client.pexpiretime(f"{key_prefix}:v{published.version}:advisor_load:a1:2024-03-01:2024-03-{day:02d}")
        jitters.append((expires - after - 100_000, expires - before - 100_000))

    assert all(high >= 0 and low <= 50_000 for low, high in jitters)
    # ten uniform draws over 50 s spread this far except with p ~ 1e-8
    assert max(low for low, _ in jitters) - min(high for _, high in jitters) > 5_000


def test_unknown_ids_are_cached_too_for_the_short_negative_ttl(publish_tables, start_api, db_url, redis_url, key_prefix):
    published = publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=600, negative_ttl=20))
    client = redis.Redis.from_url(redis_url)
    before = redis_now_ms(client)
    assert [get(api, "/advisors/ghost/load").status_code for _ in range(3)] == [404, 404, 404]
    after = redis_now_ms(client)
    assert db_queries(api) == 1
    expires = client.pexpiretime(f"{key_prefix}:v{published.version}:advisor_load:ghost:2024-03-04:2024-03-10")
    assert before + 1 <= expires <= after + 20_000  # the negative TTL, not the 600 s of real answers


def test_a_thousand_random_ids_occupy_at_most_the_negative_cap(publish_tables, start_api, db_url, redis_url, key_prefix):
    # GIVEN an API that may keep at most 50 not-found entries at a time
    publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, negative_ttl=600, max_negative_entries=50))
    get(api)  # one real entry
    client = redis.Redis.from_url(redis_url)
    rng = random.Random(15)
    ids = ["".join(rng.choices(string.ascii_letters + string.digits, k=12)) for _ in range(1000)]

    # WHEN a client asks for 1,000 ids that do not exist
    answers = [get(api, f"/advisors/{ident}/load").status_code for ident in ids]

    # THEN each is a 404, and Redis holds the real entry, the version key, the window counter and 50 misses
    assert answers == [404] * 1000
    keys = {k.decode() for k in client.scan_iter(f"{key_prefix}:*")}
    assert len(keys) == 1 + 1 + 1 + 50, sorted(keys)[:5]
    assert sum(k.split(":")[3] in ids for k in keys if k.count(":") >= 4) == 50
    assert api.metrics.cache_not_found_uncached.value("advisor_load") == 950
    # the first 50 stay cached; the rest are answered from PostgreSQL each time
    queries = db_queries(api)
    assert get(api, f"/advisors/{ids[0]}/load").status_code == 404 and db_queries(api) == queries
    assert get(api, f"/advisors/{ids[-1]}/load").status_code == 404 and db_queries(api) == queries + 1


def test_an_expired_entry_is_loaded_again(publish_tables, start_api, db_url, redis_url, key_prefix):
    published = publish_tables(*data(), redis_url=redis_url, key_prefix=key_prefix)
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=600, cache_jitter=0.0))

    get(api), get(api)
    assert db_queries(api) == 1
    # expire it now, as its TTL would (the TTL itself is checked in test_miss_then_hit_with_versioned_key_and_ttl)
    assert redis.Redis.from_url(redis_url).pexpire(f"{key_prefix}:v{published.version}:advisor_load:a1:2024-03-04:2024-03-10", 0)
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
    clock = FakeClock()
    api = start_api(api_config(db_url, redis_url, key_prefix, cache_ttl=600, version_check_interval=5), clock)
    assert scheduled(get(api)) == 4

    publish_tables(*data(scheduled=9))  # no Redis URL: Redis keeps the old version
    clock.advance(4.9)
    assert scheduled(get(api)) == 4  # within the check interval the old version still rules
    clock.advance(0.2)
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
    clock = FakeClock()
    api = start_api(api_config(db_url, private_redis.url, key_prefix, redis_retry_after=0.3), clock)
    expected = get(api).content
    assert get(api).content == expected and api.metrics.cache_hits.value("advisor_load") == 1

    private_redis.stop()
    answers = [get(api) for _ in range(5)] + concurrently(20, lambda _: get(api))

    assert all(r.status_code == 200 and r.content == expected for r in answers)
    assert get(api, "/advisors/a2/load").json()["days"][0]["advisor_id"] == "a2"
    m = api.metrics
    assert m.redis_up.value() == 0
    # each of the 26 (a1 25 times, a2 once) went to PostgreSQL, on its own or joined to a concurrent identical one
    assert m.cache_bypass.value("advisor_load") + m.cache_coalesced.value("advisor_load") == 26
    assert m.cache_hits.value("advisor_load") == 1  # nothing more came from Redis
    health = httpx.get(f"{api.url}/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded" and health.json()["cache"] == "down"
    exposed = httpx.get(f"{api.url}/metrics").text
    assert "advising_cache_redis_up 0" in exposed
    # failures are fast: one failed Redis call opened the cool-down, and nothing after it tried Redis again
    assert [l for l in exposed.splitlines() if l.startswith("advising_cache_errors_total")] == [
        'advising_cache_errors_total{op="version"} 1'
    ]

    private_redis.start()  # same port, empty: no version key, no entries
    clock.advance(0.4)  # past the 0.3 s cool-down
    hits_before = m.cache_hits.value("advisor_load")
    assert get(api).content == expected and get(api).content == expected
    assert m.cache_hits.value("advisor_load") == hits_before + 1 and m.redis_up.value() == 1
