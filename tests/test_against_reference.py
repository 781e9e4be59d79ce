"""Differential tests: the Spark pipeline (jobs.pipeline) against the pure-Python reference (tests/reference).

One hand-made change log stresses every contract rule; appointment ids name the rule they stress
(`a-seq-length`, `a-img-dur-float`, ...), so a differing row says which rule broke. It runs as one full
run in UTC and in America/Chicago (across the DST switch), as a chain of runs as of each ingest_date in
Pacific/Auckland, and as a chain of runs after each batch of arriving files (late files landing in
already-processed folders) in Asia/Kolkata; every step is compared with the reference, and each chain
with a --full rebuild of itself. A generated sample log runs as a two-step chain. Each Spark run serves
several assertions, to keep the module to a few minutes on 2 cores.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections import Counter

import pytest

from tests.reference.compare import assert_matches_reference, assert_same_outputs, read_all
from tests.reference.contract import compute_tables
from tests.reference.logbuilder import DROP, change, image, seq, write_advisors, write_log

pytestmark = pytest.mark.slow

D1, D2, D3, D4 = "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09"


def _regular_appointments():
    """Thirty ordinary appointments spread over advisors, students, departments, days and statuses."""
    statuses = ("BOOKED", "COMPLETED", "NO_SHOW", "CANCELLED", "COMPLETED", "BOOKED")
    created_days = (20, 21, 21, 24, 27, 28, 1, 2, 2, 6)  # Feb 20.. Mar 6, with gaps to zero-fill
    per_folder = {D1: [], D2: [], D3: [], D4: []}
    for i in range(30):
        aid = f"a-reg-{i:02d}"
        created_day = created_days[i % len(created_days)]
        month = 2 if created_day >= 20 else 3
        item = image(
            aid,
            student_id=f"s-{i % 7}",
            advisor_id=("adv-1", "adv-2", "adv-3", "adv-4", "adv-9")[i % 5],
            department=("MATH", "PHYS", "CHEM")[i % 3],
            start_time=f"2026-03-{10 + i % 5:02d}T{(i * 5) % 24:02d}:{(i * 7) % 60:02d}:00Z",
            created_at=f"2026-{month:02d}-{created_day:02d}T{(i * 11) % 24:02d}:30:00.{i:03d}Z",
            updated_at="2026-03-06T00:00:00Z",
            duration_minutes=(15, 30, 45, 60, 90)[i % 5],
            status="BOOKED",
        )
        per_folder[D1].append(change(f"e-reg-{i}-1", aid, seq(100 + i), new_image=item))
        if i % 2:
            # A later MODIFY sets the final status; every third lands in a later folder.
            folder = (D2, D3, D4)[i % 3]
            per_folder[folder].append(change(
                f"e-reg-{i}-2", aid, seq(200 + i), event_name="MODIFY",
                new_image={**item, "status": statuses[i % len(statuses)], "updated_at": "2026-03-07T00:00:00Z"}))
    return per_folder


# Near-midnight instants in each zone (UTC, Chicago across the DST switch of 8 March, Kolkata, Auckland).
MIDNIGHTS = {
    "a-mid-chi-1": "2026-03-10T04:59:59Z", "a-mid-chi-2": "2026-03-10T05:00:00Z",
    "a-mid-dst-1": "2026-03-08T05:59:59Z", "a-mid-dst-2": "2026-03-08T06:00:00Z",
    "a-mid-kol-1": "2026-03-09T18:29:59.999999Z", "a-mid-kol-2": "2026-03-09T18:30:00Z",
    "a-mid-akl-1": "2026-03-09T10:59:59Z", "a-mid-akl-2": "2026-03-09T11:00:00Z",
    "a-mid-utc-1": "2026-03-09T23:59:59.9999999Z", "a-mid-utc-2": "2026-03-10T00:00:00Z",
}
CREATED_NEAR_MIDNIGHT = (
    "2026-03-02T05:59:59Z", "2026-03-02T06:00:00Z", "2026-03-02T18:29:59Z", "2026-03-02T18:30:00Z",
    "2026-03-02T10:59:59Z", "2026-03-02T11:00:00Z", "2026-03-02T23:59:59Z", "2026-03-03T00:00:00Z",
)


def stress_files() -> dict[tuple[str, str], list]:
    """(ingest_date, path inside the folder) -> lines. D1 is free of rejects, so a run as of D1 has an
    empty quarantine; the only D3 reject leaves quarantine in D4, so its partition must vanish."""
    regular = _regular_appointments()
    f = {}

    d1 = list(regular[D1])
    d1 += [
        change("e-len-1", "a-seq-length", "9" * 21, new_image=image("a-seq-length", status="BOOKED")),
        change("e-zero-1", "a-seq-zeros", "0000000000000000000099", new_image=image("a-seq-zeros", status="COMPLETED")),
        change("e-zero-2", "a-seq-zeros", "100", new_image=image("a-seq-zeros", status="NO_SHOW")),
        change("e-40-1", "a-seq-40", "1" + "0" * 39, new_image=image("a-seq-40", status="COMPLETED")),
        change("e-40-2", "a-seq-40", "9" * 39, new_image=image("a-seq-40", status="BOOKED")),
        change("e-50-1", "a-seq-50", "1" + "9" * 49, new_image=image("a-seq-50", status="BOOKED")),
        # 12:00+02:00 is 10:00Z: earlier than 11:00Z, though later as text.
        change("e-tie-9", "a-tie-instant", seq(5), created="2026-03-06T12:00:00+02:00",
               new_image=image("a-tie-instant", status="BOOKED")),
        change("e-tie-1", "a-tie-instant", seq(5), created="2026-03-06T11:00:00Z",
               new_image=image("a-tie-instant", status="COMPLETED")),
        # Equal instants once truncated to microseconds: the greatest event_id wins.
        change("e-teid-b", "a-tie-eid", seq(5), created="2026-03-06T11:00:00.0000009Z",
               new_image=image("a-tie-eid", status="BOOKED")),
        change("e-teid-c", "a-tie-eid", seq(5), created="2026-03-06T06:00:00-05:00",
               new_image=image("a-tie-eid", status="NO_SHOW")),
        change("e-teid-a", "a-tie-eid", seq(5), created="2026-03-06T11:00:00Z",
               new_image=image("a-tie-eid", status="COMPLETED")),
        change("e-dup-1", "a-dup-event", seq(1), new_image=image("a-dup-event", student_id="s-dup")),
        change("e-rm-1", "a-removed", seq(1), new_image=image("a-removed", start_time="2026-04-05T15:00:00Z")),
        change("e-rb-10", "a-rollback", seq(10), new_image=image("a-rollback", status="COMPLETED")),
        change("e-rc-1", "a-recreated", seq(1), new_image=image("a-recreated", student_id="s-old")),
        change("e-lq-1", "a-leaves-quarantine", seq(1)),
        change("e-mv-1", "a-moves", seq(1), new_image=image("a-moves", start_time="2026-04-01T15:00:00Z")),
        # Valid edges.
        change("e-d5", "a-dur-5", seq(1), new_image=image("a-dur-5", duration_minutes=5)),
        change("e-d480", "a-dur-480", seq(1), new_image=image("a-dur-480", duration_minutes=480,
                                                             start_time="2026-03-10T20:00:00Z")),
        change("e-chn", "a-channel-null", seq(1), new_image=image("a-channel-null", channel=None)),
        change("e-cha", "a-channel-absent", seq(1), new_image=image("a-channel-absent", channel=DROP)),
        change("e-chm", "a-channel-mobile", seq(1), new_image=image("a-channel-mobile", channel="mobile")),
        change("e-ext", "a-extra-attrs", seq(1), new_image=image("a-extra-attrs", notes="x", room={"b": 2}, tags=[1])),
        change("e-f1", "a-frac-1", seq(1), new_image=image("a-frac-1", start_time="2026-03-10T15:00:00.5Z")),
        change("e-f7", "a-frac-7", seq(1), new_image=image(
            "a-frac-7", start_time="2026-03-10T15:00:00.1234567Z", created_at="2026-03-01T12:00:00.9999999+05:30")),
        change("e-f9", "a-frac-9", seq(1), new_image=image(
            "a-frac-9", start_time="2026-03-10T15:00:00.987654321-06:00", updated_at="2026-03-02T00:00:00.000000001Z")),
        change("e-neg", "a-negative-lead", seq(1), new_image=image(
            "a-negative-lead", created_at="2026-03-10T16:45:00Z", department="PHYS")),
    ]
    for n, (aid, start) in enumerate(MIDNIGHTS.items()):
        d1.append(change(f"e-{aid}", aid, seq(1), new_image=image(
            aid, start_time=start, created_at=CREATED_NEAR_MIDNIGHT[n % len(CREATED_NEAR_MIDNIGHT)],
            advisor_id=("adv-1", "adv-4", "adv-9")[n % 3], student_id=f"s-mid-{n % 4}")))
    f[(D1, "batch-a/part-0001.jsonl.gz")] = d1
    f[(D1, "late/part-0009.jsonl")] = [  # arrives after D1 was processed
        "",
        change("e-dup-1", "a-dup-event", seq(1), new_image=image("a-dup-event", student_id="s-dup")),
        "   ",
        change("e-late-d1", "a-late-d1", seq(1), new_image=image("a-late-d1", department="BIO")),
        change("e-len-2", "a-seq-length", "1" + "0" * 21, new_image=image("a-seq-length", status="COMPLETED")),
    ]

    f[(D2, "part-0001.jsonl.gz")] = list(regular[D2]) + [
        "{not json",
        "[1, 2]",
        "{dup reject",
        "{dup reject",
        change("e-x1", "a-rej-no-event-id", seq(1), event_id=DROP),
        change("", "a-rej-empty-event-id", seq(1)),
        change("e-x3", None, seq(1)),
        change("e-x4", "a-rej-upsert", seq(1), event_name="UPSERT"),
        change("e-x5", "a-rej-lowercase", seq(1), event_name="insert"),
        change("e-x6", "a-rej-seq-number", 100000000000000000001),
        change("e-x7", "a-rej-seq-alpha", "12a4"),
        change("e-x8", "a-rej-seq-empty", ""),
        change("e-x9", "a-rej-act-space", seq(1), created="2026-03-07 12:00:00Z"),
        change("e-x10", "a-rej-act-compact-offset", seq(1), created="2026-03-07T12:00:00+0530"),
        change("e-x11", "a-rej-act-missing", seq(1), approximate_creation_time=DROP),
        change("e-x12", "a-rej-act-feb30", seq(1), created="2026-02-30T12:00:00Z"),
        change("e-x13", "a-rej-act-no-offset", seq(1), created="2026-03-07T12:00:00"),
        change("e-x14", "a-rej-act-no-seconds", seq(1), created="2026-03-07T12:00Z"),
        change("e-dup-1", "a-dup-event", seq(1), new_image=image("a-dup-event", student_id="s-dup")),
        change("e-dup-2", "a-dup-event", seq(2), event_name="MODIFY",
               new_image=image("a-dup-event", student_id="s-dup", status="CANCELLED")),
        change("e-dupbad", "a-dup-bad", seq(1), new_image=image("a-dup-bad", status="Booked")),
        change("e-rc-2", "a-recreated", seq(2), event_name="REMOVE"),
        change("e-50-2", "a-seq-50", "2" + "0" * 49, new_image=image("a-seq-50", status="NO_SHOW")),
    ] + [
        change(f"e-{aid}", aid, seq(1), event_name=event, new_image=new_image)
        for aid, event, new_image in [
            ("a-img-dur-float", "INSERT", image("a-img-dur-float", duration_minutes=30.0)),
            ("a-img-dur-string", "INSERT", image("a-img-dur-string", duration_minutes="30")),
            ("a-img-dur-low", "INSERT", image("a-img-dur-low", duration_minutes=4)),
            ("a-img-dur-high", "INSERT", image("a-img-dur-high", duration_minutes=481)),
            ("a-img-dur-missing", "INSERT", image("a-img-dur-missing", duration_minutes=DROP)),
            ("a-img-status-lower", "INSERT", image("a-img-status-lower", status="booked")),
            ("a-img-student-empty", "INSERT", image("a-img-student-empty", student_id="")),
            ("a-img-student-number", "INSERT", image("a-img-student-number", student_id=12345)),
            ("a-img-advisor-missing", "INSERT", image("a-img-advisor-missing", advisor_id=DROP)),
            ("a-img-department-null", "INSERT", image("a-img-department-null", department=None)),
            ("a-img-id-mismatch", "INSERT", image("a-img-other-id")),
            ("a-img-start-compact-offset", "INSERT", image("a-img-start-compact-offset", start_time="2026-03-10T15:00:00+0530")),
            ("a-img-start-space", "INSERT", image("a-img-start-space", start_time="2026-03-10 15:00:00Z")),
            ("a-img-start-no-offset", "INSERT", image("a-img-start-no-offset", start_time="2026-03-10T15:00:00")),
            ("a-img-start-10-digits", "INSERT", image("a-img-start-10-digits", start_time="2026-03-10T15:00:00.1234567890Z")),
            ("a-img-created-feb30", "INSERT", image("a-img-created-feb30", created_at="2026-02-30T12:00:00Z")),
            ("a-img-updated-no-seconds", "INSERT", image("a-img-updated-no-seconds", updated_at="2026-03-01T12:00Z")),
            ("a-img-channel-number", "INSERT", image("a-img-channel-number", channel=7)),
            ("a-img-ghost-department", "INSERT", image("a-img-ghost-department", department="GHOST", status="DONE")),
            ("a-img-null", "MODIFY", None),
        ]
    ]
    f[(D2, "retry/part-0002.jsonl.gz")] = [  # arrives after D2 was processed
        change("e-late-d2", "a-late-d2", seq(1), new_image=image(
            "a-late-d2", start_time="2026-03-09T11:00:00Z", created_at="2026-03-05T11:00:00Z", advisor_id="adv-2")),
        "{retry reject",
    ]

    f[(D3, "part-0001.jsonl.gz")] = list(regular[D3]) + [
        change("e-rm-3", "a-removed", seq(3), event_name="REMOVE"),
        change("e-rc-3", "a-recreated", seq(3), new_image=image("a-recreated", student_id="s-new")),
        change("e-lq-2", "a-leaves-quarantine", seq(2), event_name="MODIFY",
               new_image=image("a-leaves-quarantine", duration_minutes=30.0)),
        change("e-mv-2", "a-moves", seq(2), event_name="MODIFY",
               new_image=image("a-moves", start_time="2026-04-02T15:00:00Z")),
    ]

    f[(D4, "part-0001.jsonl.gz")] = list(regular[D4]) + [
        # A REMOVE's leftover image is not checked; a REMOVE of an unknown item leaves nothing behind.
        change("e-rmi-1", "a-remove-with-image", seq(1)),
        change("e-rmi-2", "a-remove-with-image", seq(2), event_name="REMOVE",
               new_image=image("a-remove-with-image", status="bad")),
        change("e-rmo", "a-remove-only", seq(7), event_name="REMOVE"),
        # Rejected lines never win, however high their sequence number.
        change("e-hi-1", "a-rejected-cannot-win", seq(1), new_image=image("a-rejected-cannot-win", status="COMPLETED")),
        change("e-hi-2", "a-rejected-cannot-win", seq(9), event_name="DELETE"),
        change("e-hi-3", "a-rejected-cannot-win", seq(9) + "x", event_name="REMOVE"),
        change("e-noimg", "a-img-absent", seq(1), new_image=DROP),
        change("e-lq-3", "a-leaves-quarantine", seq(3), event_name="MODIFY"),
        change("e-rm-2", "a-removed", seq(2), event_name="MODIFY"),
        change("e-rb-9", "a-rollback", seq(9), event_name="MODIFY", new_image=image("a-rollback", status="BOOKED")),
        change("e-rb-8", "a-rollback", seq(8), event_name="MODIFY", new_image=image("a-rollback", status="bad")),
        change("e-dup-2", "a-dup-event", seq(2), event_name="MODIFY",
               new_image=image("a-dup-event", student_id="s-dup", status="CANCELLED")),
        change("e-dupbad", "a-dup-bad", seq(1), new_image=image("a-dup-bad", status="Booked")),
        "{not json",
    ]
    f[(D4, "part-0002.jsonl")] = [
        change("e-d4-plain", "a-d4-plain", seq(1), new_image=image("a-d4-plain", department="CHEM", advisor_id="adv-3")),
    ]
    return f


# Order in which files "arrive" for the file-arrival split: late files land in processed folders.
ARRIVAL_BATCHES = (
    ((D1, "batch-a/part-0001.jsonl.gz"), (D2, "part-0001.jsonl.gz")),
    ((D3, "part-0001.jsonl.gz"), (D1, "late/part-0009.jsonl")),
    ((D4, "part-0001.jsonl.gz"), (D4, "part-0002.jsonl"), (D2, "retry/part-0002.jsonl.gz")),
)

ADVISORS = [
    ["adv-1", 'Pat "PJ" Smith, Jr.', "Mathematics", "120"],
    ["adv-2", "Lee\r\nOn Two Lines", "Physics", "450.5"],  # capacity unknown, department applies
    ["adv-3", "Zero Capacity", "Chemistry", "0"],
    ["adv-4", "Ana", "Mathematics", "480"],
    ["adv-5", "Not Seen", "Biology", "300"],
]  # adv-9 is not listed


def write_stress_input(root: str, only: tuple = ()) -> None:
    """The stress log (or only the files in `only`) plus the advisors dimension under `root`."""
    if not os.path.exists(os.path.join(root, "advisors")):
        write_advisors(root, ADVISORS)
    for (ingest_date, relpath), lines in stress_files().items():
        if not only or (ingest_date, relpath) in only:
            folder, name = os.path.split(relpath)
            write_log(root, ingest_date, name, lines, subdir=folder)


def run(spark, input_dir, output_dir, timezone="UTC", as_of=None, full=False):
    from jobs.config import RunConfig
    from jobs.pipeline import run_pipeline

    as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    # The quality gate only decides whether to publish and is tested on its own; here it would cost
    # about two thirds of every run (measured), and the tables it lets through are what we compare.
    config = RunConfig(input=str(input_dir), output=str(output_dir), timezone=timezone, as_of=as_of, full=full,
                       skip_quality=True)
    return run_pipeline(spark, config, log=lambda *args, **kwargs: None)


# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stress_input(tmp_path_factory):
    root = tmp_path_factory.mktemp("stress-input")
    write_stress_input(str(root))
    return root


@pytest.fixture(scope="module")
def utc_full_run(spark, stress_input, tmp_path_factory):
    out = tmp_path_factory.mktemp("full-UTC")
    run(spark, stress_input, out)
    return out


def test_full_run_in_utc_matches_reference(utc_full_run, stress_input):
    assert_matches_reference(compute_tables(str(stress_input)), utc_full_run, stress_input, "full run in UTC")


def test_full_run_in_chicago_across_dst_matches_reference(spark, stress_input, tmp_path):
    run(spark, stress_input, tmp_path, timezone="America/Chicago")
    assert_matches_reference(compute_tables(str(stress_input), "America/Chicago"), tmp_path, stress_input,
                             "full run in America/Chicago")


def test_contract_named_reasons_are_used(utc_full_run):
    reasons = {}
    for row in read_all(str(utc_full_run))["quarantine"]:
        reasons.setdefault(row["appointment_id"] or row["record"], set()).add(row["reason"])
    for line in ("{not json", "{dup reject", "{retry reject"):
        assert reasons[line] == {"invalid_json"}, line
    for appointment_id in ("a-rej-upsert", "a-rej-lowercase"):
        assert reasons[appointment_id] == {"unknown_event_name"}, appointment_id
    for appointment_id in ("a-img-status-lower", "a-img-ghost-department", "a-dup-bad"):
        assert reasons[appointment_id] == {"bad_status"}, appointment_id


def _rebuild_equals_chain(spark, input_dir, out, zone, tmp_path_factory):
    """--full on the chain's output gives one full run's tables: the same as the chain's, and the reference's."""
    chain = tmp_path_factory.mktemp("chain-copy")
    shutil.copytree(out, chain, dirs_exist_ok=True)
    run(spark, input_dir, out, timezone=zone, full=True)
    assert_matches_reference(compute_tables(str(input_dir), zone), out, input_dir, f"--full rebuild in {zone}")
    assert_same_outputs(out, input_dir, chain, input_dir, "chain of incremental runs vs one full run")


def test_incremental_by_ingest_date_equals_reference_at_each_step_and_full_run(spark, stress_input,
                                                                               tmp_path_factory):
    zone = "Pacific/Auckland"
    out = tmp_path_factory.mktemp("by-date")
    for as_of in (D1, D2, D3, D4):
        run(spark, stress_input, out, timezone=zone, as_of=as_of)
        published = assert_matches_reference(
            compute_tables(str(stress_input), zone, dt.date.fromisoformat(as_of)), out, stress_input,
            f"incremental run as of {as_of} in {zone}")
        if as_of == D1:  # an empty table is published too (one empty file), then replaced by partitions
            assert published["quarantine"] == [] and published["appointments"]
    run(spark, stress_input, out, timezone=zone)
    assert_matches_reference(compute_tables(str(stress_input), zone), out, stress_input, "rerun with no new file")
    # "Whatever ran before": a rerun as of an earlier date (a backfill) shrinks every table back to that scope.
    run(spark, stress_input, out, timezone=zone, as_of=D2)
    assert_matches_reference(compute_tables(str(stress_input), zone, dt.date.fromisoformat(D2)), out, stress_input,
                             f"rerun as of the earlier {D2}")
    run(spark, stress_input, out, timezone=zone)
    assert_matches_reference(compute_tables(str(stress_input), zone), out, stress_input, "run after the backfill")
    _rebuild_equals_chain(spark, stress_input, out, zone, tmp_path_factory)


def test_incremental_by_file_arrival_equals_reference_at_each_step_and_full_run(spark, stress_input,
                                                                                tmp_path_factory):
    zone = "Asia/Kolkata"
    arriving = tmp_path_factory.mktemp("arrival-input")
    out = tmp_path_factory.mktemp("by-arrival")
    write_advisors(str(arriving), ADVISORS)
    for number, batch in enumerate(ARRIVAL_BATCHES, start=1):
        for ingest_date, relpath in batch:
            source = os.path.join(stress_input, "appointments", f"ingest_date={ingest_date}", relpath)
            target = os.path.join(arriving, "appointments", f"ingest_date={ingest_date}", relpath)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)  # a fresh modification time, as a real late upload has
        run(spark, arriving, out, timezone=zone)
        assert_matches_reference(compute_tables(str(arriving), zone), out, arriving,
                                 f"after file batch {number} in {zone}")
    _rebuild_equals_chain(spark, arriving, out, zone, tmp_path_factory)


def test_line_text_edge_cases(spark, tmp_path):
    """A line is JSON only if all of it is; a non-object image is quarantined as its JSON text; CRLF
    line ends, raw UTF-8 and U+2028 inside strings are ordinary text."""
    root, out = tmp_path / "in", tmp_path / "out"
    write_log(str(root), D1, "x.jsonl.gz", [
        change("e-ok", "a-ok", seq(1)),
        # A whole valid record followed by more text is not a JSON object: quarantine, not a change.
        json.dumps(change("e-trail", "a-rej-trailing-garbage", seq(1))) + " garbage",
        '{"event_id": "e-trail-2", "event_name": "INSERT"} {"x": 1}',
        change("e-scalar", "a-img-scalar", seq(1), event_name="MODIFY", new_image="not an object"),
        change("e-list", "a-img-list", seq(1), event_name="MODIFY", new_image=[1, "two"]),
    ])
    unicode_line = json.dumps(change("e-utf8", "a-utf8", seq(1), new_image=image(
        "a-utf8", department="Santé", student_id="s-\u2028-é")), ensure_ascii=False)
    crlf = "\r\n".join([unicode_line, "{pas de json é", json.dumps(change("e-crlf", "a-crlf", seq(1))), ""])
    folder = root / "appointments" / f"ingest_date={D2}"
    folder.mkdir(parents=True)
    (folder / "crlf.jsonl").write_bytes(crlf.encode("utf-8"))
    run(spark, root, out)
    published = assert_matches_reference(compute_tables(str(root)), out, root, "line text edge cases")
    assert Counter(row["reason"] for row in published["quarantine"])["invalid_json"] == 3


# --- generated sample data -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_input(tmp_path_factory):
    from advising.sample_data import generate

    root = tmp_path_factory.mktemp("sample") / "input"
    generate(str(root), appointments=300, seed=20261126, days=20)
    return root


def _ingest_dates(root):
    return sorted(name.split("=", 1)[1] for name in os.listdir(os.path.join(root, "appointments"))
                  if name.startswith("ingest_date="))


def test_sample_data_two_step_chain_matches_reference(spark, sample_input, tmp_path_factory):
    zone = "America/Chicago"
    reference = compute_tables(str(sample_input), zone)
    assert reference["quarantine"] and len(reference["appointments"]) > 200
    dates = _ingest_dates(sample_input)
    middle = dates[len(dates) // 2]
    out = tmp_path_factory.mktemp("sample-chain")
    run(spark, sample_input, out, timezone=zone, as_of=middle)
    assert_matches_reference(compute_tables(str(sample_input), zone, dt.date.fromisoformat(middle)), out,
                             sample_input, f"sample data as of {middle}")
    run(spark, sample_input, out, timezone=zone)
    assert_matches_reference(reference, out, sample_input, "sample data, second incremental run")
