"""The quality gate (jobs/quality/) on small real Spark DataFrames.

Each critical expectation is broken on its own, in a copy of a clean frame, and must fail the gate by
name; warnings must be reported without failing it. Each test validates only the frame it breaks, so
one test is one small GX validation.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

import pytest
from pyspark.sql import types as T

from jobs import quality
from jobs.quality import gx
from jobs.quality.report import _json_safe
from jobs.contract import TABLES

DAY = dt.date(2026, 9, 1)
T0 = dt.datetime(2026, 9, 1, 14, 0, tzinfo=dt.timezone.utc)
CREATED = T0 - dt.timedelta(days=2)

CHANGE_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("event_name", T.StringType()),
        T.StructField("sequence_number", T.StringType()),
        T.StructField("approximate_creation_time", T.TimestampType()),
        T.StructField("appointment_id", T.StringType()),
        T.StructField("new_image", T.StringType()),
        T.StructField("ingest_date", T.DateType()),
        T.StructField("source_file", T.StringType()),
    ]
)


def _nullable(schema: T.StructType) -> T.StructType:
    # Staged tables read back from Parquet have nullable columns: a null must be able to get in.
    return T.StructType([T.StructField(f.name, f.dataType, True) for f in schema.fields])


SCHEMAS = {
    "change_log": CHANGE_SCHEMA,
    "snapshot": CHANGE_SCHEMA,
    **{name: _nullable(schema) for name, (schema, _) in TABLES.items()},
}


def _change(n: int, event_name: str = "INSERT", appointment: str = "apt-1") -> dict:
    image = None if event_name == "REMOVE" else json.dumps({"appointment_id": appointment, "status": "BOOKED"})
    return {
        "event_id": f"ev-{n}",
        "event_name": event_name,
        "sequence_number": str(100000000000000000000 + n),
        "approximate_creation_time": CREATED + dt.timedelta(minutes=n),
        "appointment_id": appointment,
        "new_image": image,
        "ingest_date": CREATED.date(),
        "source_file": "appointments/ingest_date=2026-08-30/shard-0000/changes-00000.jsonl.gz",
    }


def _appointment(n: int, status: str = "BOOKED") -> dict:
    start = T0 + dt.timedelta(hours=n)
    return {
        "appointment_id": f"apt-{n}",
        "student_id": f"S{n}",
        "advisor_id": "ADV00001",
        "department": "Engineering",
        "status": status,
        "channel": "web" if n % 2 else None,
        "start_time": start,
        "created_at": CREATED,
        "updated_at": CREATED,
        "end_time": start + dt.timedelta(minutes=30),
        "duration_minutes": 30,
        "lead_time_hours": (start - CREATED).total_seconds() / 3600,
        "appointment_date": DAY,
    }


def _load(advisor: str, day: dt.date = DAY) -> dict:
    return {
        "advisor_id": advisor,
        "department": "Engineering",
        "scheduled_count": 3,
        "completed_count": 1,
        "no_show_count": 1,
        "cancelled_count": 1,
        "booked_minutes": 90,
        "distinct_students": 3,
        "capacity_minutes": 480,
        "utilization": 90 / 480,
        "no_show_rate": 0.5,
        "date": day,
    }


def _trend(day: dt.date, department: str = "Engineering") -> dict:
    return {
        "department": department,
        "bookings_created": 4,
        "cancelled_count": 1,
        "cancellation_rate": 0.25,
        "median_lead_time_hours": 20.0,
        "p90_lead_time_hours": 40.0,
        "bookings_7d_avg": 4 / 7,
        "date": day,
    }


def _quarantined(n: int) -> dict:
    return {
        "reason": "bad_status",
        "record": '{"status": "booked"}',
        "source_file": "appointments/ingest_date=2026-08-30/shard-0000/changes-00000.jsonl.gz",
        "appointment_id": f"apt-q{n}",
        "ingest_date": CREATED.date(),
    }


def clean_rows() -> dict:
    """One clean, mutually consistent set of frames (10 appointments and a tombstone, 1 in quarantine)."""
    return {
        "change_log": [_change(1), _change(2, "MODIFY"), _change(3, "REMOVE", "apt-2"), _change(4, appointment="apt-3")],
        "snapshot": [_change(10 + n, "MODIFY", f"apt-{n}") for n in range(10)] + [_change(30, "REMOVE", "apt-10")],
        "appointments": [_appointment(n, ("BOOKED", "CANCELLED", "COMPLETED", "NO_SHOW")[n % 4]) for n in range(10)],
        "advisor_daily_load": [_load("ADV00001"), _load("ADV00002"), _load("ADV00001", DAY + dt.timedelta(days=1))],
        "booking_trends_daily": [_trend(DAY), _trend(DAY + dt.timedelta(days=1)), _trend(DAY, "Nursing")],
        "quarantine": [_quarantined(1)],
    }


def run_gate(frames: dict, previous, whole=None, counted=None):
    """The gate as a run drives it: every frame checked, then the verdict (`whole`: a nightly run's)."""
    gate = quality.Gate(previous, nightly=whole is not None)
    for name in sorted(frames, key=quality.FRAME_ORDER.index):
        gate.check(name, frames[name], (counted or {}).get(name))
    return gate.report(whole)


def frame(spark, name: str, rows: list):
    schema = SCHEMAS[name]
    return spark.createDataFrame([tuple(row[f.name] for f in schema.fields) for row in rows], schema)


def broken(spark, name: str, mutate) -> dict:
    rows = clean_rows()[name]
    mutate(rows)
    return {name: frame(spark, name, rows)}


def _set(index: int, **values):
    def mutate(rows):
        rows[index] = {**rows[index], **values}

    return mutate


def _duplicate(index: int, **values):
    def mutate(rows):
        rows.append({**rows[index], **values})

    return mutate


# (frame, expectation that must fail, how to break it, an offending value the report must show)
CRITICAL_BREACHES = [
    ("change_log", "change_log.event_id_not_null", _set(0, event_id=None), None),
    ("change_log", "change_log.appointment_id_not_null", _set(1, appointment_id=None), None),
    ("change_log", "change_log.event_name_in_set", _set(1, event_name="UPSERT"), "UPSERT"),
    ("change_log", "change_log.sequence_number_digits", _set(0, sequence_number="12a4"), "12a4"),
    ("change_log", "change_log.approximate_creation_time_not_null", _set(2, approximate_creation_time=None), None),
    ("snapshot", "snapshot.appointment_id_unique", _duplicate(0, event_id="ev-99"), "apt-0"),
    ("snapshot", "snapshot.event_name_in_set", _set(0, event_name="insert"), "insert"),
    ("appointments", "appointments.appointment_id_unique", _duplicate(3, status="COMPLETED"), "apt-3"),
    ("appointments", "appointments.student_id_not_null", _set(4, student_id=None), None),
    ("appointments", "appointments.appointment_date_not_null", _set(4, appointment_date=None), None),
    ("appointments", "appointments.status_in_set", _set(2, status="booked"), "booked"),
    ("appointments", "appointments.duration_minutes_in_range", _set(5, duration_minutes=481), 481),
    ("appointments", "appointments.duration_minutes_in_range", _set(5, duration_minutes=4), 4),
    ("appointments", "appointments.end_after_start", _set(6, end_time=T0 + dt.timedelta(hours=6)), None),
    ("advisor_daily_load", "advisor_daily_load.date_advisor_unique", _duplicate(0, department="Nursing"), None),
    ("advisor_daily_load", "advisor_daily_load.advisor_id_not_null", _set(1, advisor_id=None), None),
    ("advisor_daily_load", "advisor_daily_load.cancelled_count_non_negative", _set(0, cancelled_count=-1), -1),
    ("advisor_daily_load", "advisor_daily_load.utilization_non_negative", _set(0, utilization=-0.25), -0.25),
    ("advisor_daily_load", "advisor_daily_load.capacity_minutes_positive", _set(0, capacity_minutes=0, utilization=None), 0),
    ("advisor_daily_load", "advisor_daily_load.no_show_rate_in_range", _set(1, no_show_rate=1.5), 1.5),
    ("advisor_daily_load", "advisor_daily_load.counts_consistent", _set(2, completed_count=3), "ADV00001"),
    ("advisor_daily_load", "advisor_daily_load.counts_consistent", _set(2, distinct_students=4), "ADV00001"),
    ("booking_trends_daily", "booking_trends_daily.date_department_unique", _duplicate(2, bookings_created=5), None),
    ("booking_trends_daily", "booking_trends_daily.cancellation_rate_in_range", _set(0, cancellation_rate=1.25), 1.25),
    ("booking_trends_daily", "booking_trends_daily.cancelled_within_bookings", _set(1, cancelled_count=5), None),
    ("booking_trends_daily", "booking_trends_daily.bookings_7d_avg_non_negative", _set(1, bookings_7d_avg=-1.0), -1.0),
    ("quarantine", "quarantine.reason_not_null", _set(0, reason=None), None),
    ("quarantine", "quarantine.source_file_not_null", _set(0, source_file=None), None),
]


def test_clean_frames_pass_with_every_check_reported(spark):
    rows = clean_rows()
    frames = {name: frame(spark, name, rows[name]) for name in rows}
    previous = {name: len(rows[name]) for name in TABLES}

    report = run_gate(frames, previous)

    assert report.passed, report.summary_line()
    assert report.critical_failures() == [] and report.warnings() == []
    assert all(r.success for r in report.results)
    assert report.row_counts == {name: len(rows[name]) for name in rows}
    names = [r.name for r in report.results]
    assert len(names) == len(set(names))
    assert {"appointments.row_count_vs_previous", "quarantine.share_of_snapshot", "snapshot.appointment_id_unique"} <= set(names)
    assert {r.frame for r in report.results} == set(rows)
    assert report.summary_line().startswith(f"quality gate passed: {len(names)} expectations checked, 0 warning(s)")
    assert report.seconds > 0
    json.dumps(report.to_dict())


def test_frames_checked_as_they_come_are_reported_in_frame_order(spark):
    """A nightly run hands the gate each table as its writer finishes (threads, any order): the report is the
    same as for frames checked in FRAME_ORDER, and the quarantine's share of the snapshot still uses the
    snapshot's count (checked first, as runs do)."""
    rows = clean_rows()
    frames = {name: frame(spark, name, rows[name]) for name in rows}
    gate = quality.Gate(None)
    for name in ["change_log", "snapshot", "quarantine", "booking_trends_daily", "appointments", "advisor_daily_load"]:
        gate.check(name, frames[name])
    shuffled = gate.report()

    in_order = run_gate(frames, None)

    assert [(r.frame, r.name, r.success, r.details) for r in shuffled.results] == [
        (r.frame, r.name, r.success, r.details) for r in in_order.results
    ]
    assert [r.frame for r in shuffled.results][:2] == ["change_log", "change_log"]
    assert "quarantine.share_of_snapshot" in {r.name for r in shuffled.results}


@pytest.mark.parametrize(
    "name,expectation,mutate,example", CRITICAL_BREACHES, ids=[f"{b[1]}-{i}" for i, b in enumerate(CRITICAL_BREACHES)]
)
def test_each_critical_breach_fails_the_gate_by_name(spark, name, expectation, mutate, example):
    report = run_gate(broken(spark, name, mutate), None)

    assert not report.passed
    assert [r.name for r in report.critical_failures()] == [expectation], report.summary_line()
    failure = report.critical_failures()[0]
    assert failure.severity == "critical" and failure.frame == name
    assert "expected " in failure.details
    assert failure.examples, "a failed check lists offending values"
    if example is not None:
        assert example in failure.examples or json.dumps(example) in json.dumps(_json_safe(failure.examples))
    line = report.summary_line()
    assert line.startswith("quality gate FAILED: ") and f"{expectation} (critical)" in line and "\n" not in line


def test_a_snapshot_that_shrinks_by_more_than_half_fails(spark):
    appointments = _appointments_frame(spark, 400)

    report = run_gate({"appointments": appointments}, {"appointments": 1000, "quarantine": 10})

    assert not report.passed
    assert [r.name for r in report.critical_failures()] == ["appointments.row_count_vs_previous"]
    assert report.critical_failures()[0].details.startswith("400 rows vs 1000 previously (-60%); expected at least 500 rows")
    assert "appointments.row_count_vs_previous (critical): 400 rows vs 1000 previously (-60%)" in report.summary_line()


def test_a_snapshot_that_keeps_more_than_half_passes(spark):
    report = run_gate({"appointments": _appointments_frame(spark, 600)}, {"appointments": 1000})

    assert report.passed, report.summary_line()
    (check,) = [r for r in report.results if r.name == "appointments.row_count_vs_previous"]
    assert check.success and check.details == "600 rows vs 1000 previously (-40%)"


def test_a_nightly_run_checks_row_counts_and_keys_on_the_whole_tables(spark):
    """Its frames hold only the recomputed partitions (here 10 rows): the shrink check uses the whole table's
    count, and a duplicated id across partitions fails the gate."""
    recomputed = {"appointments": _appointments_frame(spark, 10)}
    previous = {"appointments": 1000, "advisor_daily_load": 50}

    whole = quality.WholeTables(rows={"appointments": 990, "advisor_daily_load": 20}, duplicate_appointment_ids=0)
    report = run_gate(recomputed, previous, whole)
    assert report.passed, report.summary_line()
    assert report.row_counts["appointments"] == 990
    (rows,) = [r for r in report.results if r.name == "appointments.row_count_vs_previous"]
    assert rows.success and rows.details == "990 rows vs 1000 previously (-1%)"
    assert [r.name for r in report.warnings()] == ["advisor_daily_load.row_count_vs_previous"]

    broken = quality.WholeTables(rows={"appointments": 400}, duplicate_appointment_ids=3)
    report = run_gate(recomputed, previous, broken)
    assert not report.passed
    assert [r.name for r in report.critical_failures()] == [
        "appointments.row_count_vs_previous", "appointments.appointment_id_unique_whole_table"
    ]
    assert report.critical_failures()[1].details.startswith("3 appointment_id values in more than one row")


def test_a_frame_its_writer_counted_is_not_counted_again(spark):
    """A full run passes the rows each write counted: GX's row count of such a frame is taken from there instead
    of a query of its own (a figure unlike the frame's own shows which one was used); other frames are counted."""
    quarantined = clean_rows()["quarantine"]
    frames = {"appointments": _appointments_frame(spark, 10), "quarantine": frame(spark, "quarantine", quarantined)}

    report = run_gate(frames, {"appointments": 1000}, counted={"appointments": 600})

    assert report.row_counts == {"appointments": 600, "quarantine": len(quarantined)}
    (check,) = [r for r in report.results if r.name == "appointments.row_count_vs_previous"]
    assert check.success and check.details == "600 rows vs 1000 previously (-40%)"


def _appointments_frame(spark, count: int):
    from pyspark.sql import functions as F

    base = frame(spark, "appointments", [_appointment(0)])
    return spark.range(count).crossJoin(base.drop("appointment_id")).select(
        F.format_string("apt-%07d", "id").alias("appointment_id"), *[c for c in base.columns if c != "appointment_id"]
    )


def test_warning_only_breaches_publish_and_are_reported(spark):
    rows = clean_rows()
    rows["booking_trends_daily"][0]["median_lead_time_hours"] = 50.0  # above its p90 of 40
    rows["quarantine"] = [_quarantined(n) for n in range(3)]  # 3 rows > 10% of an 11-row snapshot
    rows["quarantine"][1]["reason"] = "Bad Status"
    rows["change_log"][0]["new_image"] = None  # an INSERT without its image
    frames = {name: frame(spark, name, rows[name]) for name in rows}
    previous = {"appointments": 10, "advisor_daily_load": 7, "booking_trends_daily": 3, "quarantine": 1}

    report = run_gate(frames, previous)

    assert report.passed, report.summary_line()
    assert report.critical_failures() == []
    assert {r.name for r in report.warnings()} == {
        "booking_trends_daily.median_within_p90",
        "quarantine.share_of_snapshot",
        "quarantine.reason_snake_case",
        "change_log.new_image_present_unless_remove",
        "advisor_daily_load.row_count_vs_previous",
    }
    line = report.summary_line()
    assert line.startswith("quality gate passed: ") and "5 warning(s)" in line
    assert "booking_trends_daily.median_within_p90 (warning)" in line
    (share,) = [r for r in report.warnings() if r.name == "quarantine.share_of_snapshot"]
    assert share.details == "3 quarantined rows = 27.3% of the snapshot's rows; expected at most 1 rows (10% of the snapshot's 11 rows)"
    (reason,) = [r for r in report.warnings() if r.name == "quarantine.reason_snake_case"]
    assert reason.examples == ["Bad Status"]
    assert report.to_dict()["warnings"] == [r.name for r in report.warnings()]


def test_an_empty_frame_passes_the_uniqueness_check(spark):
    report = run_gate({"snapshot": frame(spark, "snapshot", [])}, None)

    assert report.passed, report.summary_line()
    assert report.row_counts == {"snapshot": 0}


def test_a_missing_column_fails_its_checks_instead_of_crashing(spark):
    df = frame(spark, "booking_trends_daily", clean_rows()["booking_trends_daily"]).drop("cancellation_rate")

    report = run_gate({"booking_trends_daily": df}, None)

    assert not report.passed
    (failure,) = report.critical_failures()
    assert failure.name == "booking_trends_daily.cancellation_rate_in_range"
    assert "could not be evaluated" in failure.details


def test_report_json_and_data_docs(spark, tmp_path):
    rows = clean_rows()
    rows["appointments"][2]["status"] = "booked"
    report = run_gate({"appointments": frame(spark, "appointments", rows["appointments"])}, {"appointments": 10})

    written = quality.write_report(report, str(tmp_path / "run"))

    path = tmp_path / "run" / "quality.json"
    assert written[0] == str(path)
    doc = json.loads(path.read_text())
    assert doc["passed"] is False
    assert doc["critical_failures"] == ["appointments.status_in_set"]
    assert doc["summary"] == report.summary_line()
    assert doc["row_counts"] == {"appointments": 10}
    (failed,) = [r for r in doc["results"] if not r["success"]]
    assert failed["examples"] == ["booked"] and failed["severity"] == "critical"
    assert doc["data_docs"] == "data_docs/index.html"
    index = tmp_path / "run" / "data_docs" / "index.html"
    assert str(index) in written and all(Path(p).is_file() for p in written)
    pages = [p for p in written if "/validations/" in p]
    assert pages and "appointments.status_in_set" in Path(pages[0]).read_text()
    # only text assets are kept: a caller may copy them to object storage as text
    for p in written:
        Path(p).read_text(encoding="utf-8")


def test_report_without_results_in_memory_says_why_there_are_no_data_docs(tmp_path):
    outcome = quality.ExpectationOutcome("appointments", "appointments.status_in_set", "critical", False, "1 of 2 rows unexpected", ["x"])
    report = quality.GateReport(passed=False, results=[outcome], seconds=1.5)

    written = quality.write_report(report, str(tmp_path))

    doc = json.loads((tmp_path / "quality.json").read_text())
    assert written == [str(tmp_path / "quality.json")]
    assert doc["data_docs"].startswith("data docs not built: ")
    assert doc["summary"] == 'quality gate FAILED: appointments.status_in_set (critical): 1 of 2 rows unexpected e.g. "x"'


@pytest.mark.timeout(300)
def test_gate_runs_with_the_network_cut_off(spark, monkeypatch):
    """A kill switch, not a mock: any connection or name lookup beyond loopback raises and is recorded.
    Loopback stays open because PySpark talks to its own JVM over it."""
    attempts = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
    loopback = ("127.0.0.1", "::1", "localhost")

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in loopback:
            attempts.append(address)
            raise OSError("network disabled by test")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in loopback and host is not None:
            attempts.append(host)
            raise socket.gaierror("name lookup disabled by test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    rows = clean_rows()

    report = run_gate({"quarantine": frame(spark, "quarantine", rows["quarantine"])}, None)

    assert report.passed, report.summary_line()
    assert attempts == []
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    context = gx.context(gx.import_gx())
    assert context.config.analytics_enabled is False


def test_every_check_is_documented():
    """docs/quality.md is the reviewed description of the suites: every check name appears in it."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "quality.md").read_text()
    previous = {name: 1 for name in quality.FRAME_ORDER}
    counts = {"snapshot": 1}
    names = [c.name for frame in quality.FRAME_ORDER for c in quality.suite_checks(frame, previous, counts)]
    assert len(names) == len(set(names))
    undocumented = [name for name in names if f"`{name.split('.', 1)[1]}`" not in _section(doc, name.split(".")[0])]
    assert undocumented == []


def _section(doc: str, frame: str) -> str:
    start = doc.index(f"### `{frame}`")
    end = doc.find("\n### ", start + 1)
    return doc[start:] if end < 0 else doc[start:end]


def test_the_row_counts_gx_would_query_one_by_one_are_exact_when_counted_together(spark, monkeypatch):
    """Column-pair and compound-uniqueness checks are counted in one query per frame (jobs.quality.gx):
    each check's figure is still its own (a duplicated key makes both of its rows unexpected)."""
    from jobs.quality import gx

    folded = []
    count_together = gx._count_together
    monkeypatch.setattr(gx, "_count_together", lambda engine, counts: folded.append(count_together(engine, counts)) or folded[-1])
    appointments = clean_rows()["appointments"]
    for index in (2, 5):
        appointments[index] = {**appointments[index], "end_time": appointments[index]["start_time"]}
    trends = clean_rows()["booking_trends_daily"]
    trends.append({**trends[0], "cancelled_count": trends[0]["bookings_created"] + 1})
    frames = {"appointments": frame(spark, "appointments", appointments), "booking_trends_daily": frame(spark, "booking_trends_daily", trends)}

    report = run_gate(frames, None)

    details = {r.name: r.details for r in report.results}
    assert details["appointments.end_after_start"].startswith("2 of 10 rows unexpected")
    assert details["booking_trends_daily.date_department_unique"].startswith("2 of 4 rows unexpected")
    assert details["booking_trends_daily.cancelled_within_bookings"].startswith("1 of 4 rows unexpected")
    assert details["booking_trends_daily.median_within_p90"].startswith("0 of 4 rows unexpected")
    # Counted by the folded queries (not GX's one-by-one path after a failure): in the verdict pass, one
    # query per frame for each check's unexpected rows and rows (appointments: 1 check, trends: 3); the
    # examples of the failed checks are looked up afterwards, one check at a time.
    assert [len(counts) for counts in folded] == [2, 2, 6, 2, 2]
