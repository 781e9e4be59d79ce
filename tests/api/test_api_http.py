"""The read API over real HTTP: answers, 400/404 errors, /health and /metrics (real PostgreSQL and Redis)."""
from __future__ import annotations

import httpx
import pytest
from read_api_support import advisor_row, api_config, trend_row

ADVISORS = [
    advisor_row("a1", "2024-03-03"),
    advisor_row("a1", "2024-03-05", scheduled_count=7, booked_minutes=300, utilization=1.25, no_show_rate=None),
    advisor_row("a1", "2024-03-04", utilization=0.1 + 0.2),
    advisor_row("a:2 x", "2024-03-04", department=None, capacity_minutes=None, utilization=None),
]
TRENDS = [
    trend_row("Math", "2024-03-01"),
    trend_row("Math", "2024-03-02", bookings_created=0, cancellation_rate=None, median_lead_time_hours=None, p90_lead_time_hours=None),
    trend_row("Computer Science", "2024-03-01", bookings_7d_avg=1 / 7),
]


def as_json(row: dict) -> dict:
    return {**row, "date": row["date"].isoformat()}


@pytest.fixture(params=["cached", "uncached"])
def api(request, publish_tables, start_api, db_url, redis_url, key_prefix):
    published = publish_tables(ADVISORS, TRENDS, redis_url=redis_url, key_prefix=key_prefix)
    running = start_api(api_config(db_url, redis_url if request.param == "cached" else None, key_prefix))
    running.version = published.version
    return running


def test_advisor_load_returns_the_days_in_range_in_order(api):
    response = httpx.get(f"{api.url}/advisors/a1/load", params={"from": "2024-03-04", "to": "2024-03-10"})

    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {
        "advisor_id": "a1", "from": "2024-03-04", "to": "2024-03-10", "data_version": api.version,
        "days": [as_json(ADVISORS[2]), as_json(ADVISORS[1])],  # floats exact, nulls kept, ordered by date
    }
    # the same answer again (from Redis when cached)
    assert httpx.get(f"{api.url}/advisors/a1/load", params={"from": "2024-03-04", "to": "2024-03-10"}).json() == response.json()


def test_department_trends_and_escaped_ids(api):
    trends = httpx.get(f"{api.url}/departments/Computer Science/trends", params={"from": "2024-01-01", "to": "2024-12-31"})
    assert trends.status_code == 200 and trends.json()["days"] == [as_json(TRENDS[2])]

    for _ in range(2):  # ':' and ' ' in an id (quoted inside the cache key)
        odd = httpx.get(f"{api.url}/advisors/a:2 x/load", params={"from": "2024-03-04", "to": "2024-03-04"})
        assert odd.status_code == 200 and odd.json()["days"] == [as_json(ADVISORS[3])]

    empty = httpx.get(f"{api.url}/advisors/a1/load", params={"from": "2023-01-01", "to": "2023-01-31"})
    assert empty.status_code == 200 and empty.json()["days"] == []  # known advisor, no day in range


ERRORS = [
    ("/advisors/nobody/load", {"from": "2024-03-01", "to": "2024-03-31"}, 404, "unknown_advisor"),
    ("/departments/Nowhere/trends", {"from": "2024-03-01", "to": "2024-03-31"}, 404, "unknown_department"),
    ("/advisors/a1/load", {"to": "2024-03-31"}, 400, "bad_request"),
    ("/advisors/a1/load", {"from": "2024-3-1", "to": "2024-03-31"}, 400, "bad_request"),
    ("/advisors/a1/load", {"from": "2024-02-30", "to": "2024-03-31"}, 400, "bad_request"),
    ("/advisors/a1/load", {"from": "2024-04-01", "to": "2024-03-31"}, 400, "bad_request"),
    ("/departments/Math/trends", {"from": "2024-01-01", "to": "2025-01-01"}, 400, "bad_request"),  # 367 days
    ("/advisors/" + "x" * 201 + "/load", {"from": "2024-03-01", "to": "2024-03-31"}, 400, "bad_request"),
    ("/nothing/here", {}, 404, "not_found"),
]


def test_errors_are_json_with_the_right_status(api):
    answers = [(path, params, httpx.get(api.url + path, params=params)) for path, params, _status, _code in ERRORS]
    got = [(path, params, r.status_code, r.json().get("error")) for path, params, r in answers]
    assert got == ERRORS
    assert all(r.json()["message"] for _path, _params, r in answers)


def test_a_full_year_is_allowed(api):
    assert httpx.get(f"{api.url}/departments/Math/trends", params={"from": "2024-01-01", "to": "2024-12-31"}).status_code == 200


def test_health_and_metrics(api):
    health = httpx.get(f"{api.url}/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "cache": "ok" if api.app.state.cache.enabled else "disabled",
                             "data_version": api.version}

    httpx.get(f"{api.url}/advisors/a1/load", params={"from": "2024-03-01", "to": "2024-03-31"})
    httpx.get(f"{api.url}/advisors/a1/load", params={"from": "2024-03-01", "to": "2024-03-31"})
    metrics = httpx.get(f"{api.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.text.splitlines()
    for name in ("advising_cache_hits_total", "advising_cache_misses_total", "advising_cache_errors_total", "advising_db_queries_total"):
        assert f"# TYPE {name} counter" in lines
    if api.app.state.cache.enabled:
        assert 'advising_cache_hits_total{kind="advisor_load"} 1' in lines
        assert 'advising_cache_misses_total{kind="advisor_load"} 1' in lines
        assert 'advising_db_queries_total{query="advisor_load"} 1' in lines
    else:
        assert 'advising_db_queries_total{query="advisor_load"} 2' in lines
    assert "advising_cache_redis_up 1" in lines


def test_before_any_publish_the_api_answers_503(start_api, db_url, redis_url, key_prefix):
    api = start_api(api_config(db_url, redis_url, key_prefix))
    response = httpx.get(f"{api.url}/advisors/a1/load", params={"from": "2024-03-01", "to": "2024-03-31"})
    assert response.status_code == 503 and response.json()["error"] == "not_published"
    assert httpx.get(f"{api.url}/health").status_code == 503


# httpx sends the escapes as they are: the server decodes them (%C2%85 is U+0085, a C1 control character).
CONTROL_IDS = ["/advisors/adv-1%00/load", "/advisors/a%0Ab/load", "/advisors/%1f/load", "/departments/Math%7F/trends",
               "/departments/x%C2%85/trends"]


@pytest.mark.parametrize("path", CONTROL_IDS)
def test_ids_with_control_characters_are_a_400_without_an_error_log(api, path, caplog):
    with caplog.at_level("WARNING"):
        response = httpx.get(httpx.URL(api.url + path), params={"from": "2024-03-01", "to": "2024-03-31"})
    assert (response.status_code, response.json()["error"]) == (400, "bad_request"), response.text
    assert "control characters" in response.json()["message"]
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert api.metrics.db_queries.value("advisor_load") == api.metrics.db_queries.value("department_trends") == 0
