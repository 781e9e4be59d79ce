"""The sample change-log generator: deterministic bytes, the contract's layout, and every kind of mess.

The checks read the files back with gzip + json and classify each line by the data contract's rules,
independently of the generator's code, so a generator that stops producing a kind of mess fails here.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from advising.cli import main
from advising.sample_data import generate

N = 500
PATH_RE = re.compile(r"appointments/ingest_date=(\d{4}-\d{2}-\d{2})/((?:[^/=]+/)+)[^/]+\.jsonl(?:\.gz)?")
TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")
LINE_FIELDS = ("event_id", "event_name", "sequence_number", "approximate_creation_time", "table", "keys", "new_image", "old_image")
ITEM_ATTRIBUTES = {
    "appointment_id", "student_id", "advisor_id", "department", "start_time",
    "duration_minutes", "status", "created_at", "updated_at", "channel",
}


def parse_ts(text):
    """The contract's timestamp as a UTC datetime, or None when it breaks the format."""
    m = TS_RE.fullmatch(text) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        local = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), int((fraction or "0")[:6].ljust(6, "0")))
    except ValueError:
        return None
    if zone == "Z":
        return local
    sign = 1 if zone[0] == "+" else -1
    return local - sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))


def line_problem(text):
    """The contract's rule 1 for one raw line: None when valid, else what is wrong."""
    if text == "":
        return "blank_line"
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return "truncated_json" if text.startswith("{") else "not_json"
    if isinstance(record, list):
        return "json_array"
    if not record.get("event_id"):
        return "missing_event_id"
    if record.get("event_name") not in ("INSERT", "MODIFY", "REMOVE"):
        return "unknown_event_name"
    seq = record.get("sequence_number")
    if not isinstance(seq, str):
        return "sequence_number_json_number"
    if not seq.isdigit():
        return "sequence_number_letters"
    act = record.get("approximate_creation_time")
    if parse_ts(act) is None:
        return "creation_time_space" if " " in act else "creation_time_impossible_date"
    assert record["keys"]["appointment_id"], text
    return None


def image_problems(image, key):
    """The item-table rules for one image (rule 5); an empty set when valid."""
    problems = set()
    if image.get("status") not in ("BOOKED", "CANCELLED", "COMPLETED", "NO_SHOW"):
        problems.add("status_lower_case" if str(image.get("status")).islower() else "bad_status")
    duration = image.get("duration_minutes")
    if isinstance(duration, float):
        problems.add("duration_float")
    elif isinstance(duration, str):
        problems.add("duration_string")
    elif duration > 480:
        problems.add("duration_too_long")
    elif duration < 5:
        problems.add("duration_too_short")
    if "student_id" not in image:
        problems.add("missing_student_id")
    if image.get("advisor_id") == "":
        problems.add("empty_advisor_id")
    if parse_ts(image.get("start_time")) is None:
        problems.add("start_time_without_offset")
    if image.get("appointment_id") != key:
        problems.add("appointment_id_mismatch")
    for field in ("department", "created_at", "updated_at"):
        assert image.get(field), (field, image)
    assert parse_ts(image["created_at"]) and parse_ts(image["updated_at"]), image
    assert image.get("channel", "web") in ("web", "mobile", "walk_in", "phone", None), image
    return problems


def read_tree(root: Path):
    """Every file's bytes, by path relative to root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_lines(root: Path):
    """(relative file path, ingest date, line number, text) of every line of the change log."""
    out = []
    for rel, data in read_tree(root).items():
        if not rel.startswith("appointments/"):
            continue
        text = gzip.decompress(data).decode("utf-8") if rel.endswith(".gz") else data.decode("utf-8")
        assert text.endswith("\n"), rel
        folder_date = dt.date.fromisoformat(PATH_RE.fullmatch(rel).group(1))
        for number, line in enumerate(text[:-1].split("\n")):
            out.append((rel, folder_date, number, line))
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    summary = generate(root, appointments=N, seed=3)
    lines = read_lines(root)
    valid = []  # (file, folder date, line number, record)
    problems = Counter()
    for rel, folder_date, number, text in lines:
        problem = line_problem(text)
        if problem:
            problems[problem] += 1
        else:
            valid.append((rel, folder_date, number, json.loads(text)))
    by_appointment = defaultdict(dict)  # appointment_id -> event_id -> record
    for _, _, _, record in valid:
        by_appointment[record["keys"]["appointment_id"]][record["event_id"]] = record
    changes = {aid: sorted(events.values(), key=lambda r: int(r["sequence_number"])) for aid, events in by_appointment.items()}
    return {"root": root, "summary": summary, "lines": lines, "valid": valid, "problems": problems, "changes": changes}


def test_same_seed_same_bytes_and_worker_count_does_not_matter(tmp_path):
    first = generate(tmp_path / "a", appointments=300, seed=11, days=10)
    assert first.appointments == 300 and first.files == len(read_tree(tmp_path / "a"))
    generate(tmp_path / "b", appointments=300, seed=11, days=10, workers=2)
    generate(tmp_path / "c", appointments=300, seed=12, days=10)
    a, b, c = (read_tree(tmp_path / name) for name in "abc")
    assert a == b
    assert a != c
    assert first.bytes == sum(len(data) for data in a.values())


def test_layout_follows_the_contract(sample):
    tree = read_tree(sample["root"])
    assert "advisors/advisors.csv" in tree
    files = [rel for rel in tree if rel.startswith("appointments/")]
    assert len(files) == sample["summary"].files - 1
    for rel in files:
        m = PATH_RE.fullmatch(rel)
        assert m, rel
        dt.date.fromisoformat(m.group(1))
        assert all("=" not in part for part in m.group(2).split("/")), rel
        if rel.endswith(".gz"):
            # gzip header: magic, deflate, no flags (no file name), mtime 0: reproducible bytes.
            assert tree[rel][:8] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00", rel
    assert any(rel.endswith(".jsonl") for rel in files)
    assert sum(rel.endswith(".jsonl.gz") for rel in files) > 10 * sum(rel.endswith(".jsonl") for rel in files)
    assert sample["summary"].lines == len(sample["lines"])


def test_valid_lines_carry_the_contract_fields(sample):
    assert len(sample["valid"]) > 2.5 * N
    first_folder = {}
    for rel, folder_date, _, record in sample["valid"]:
        assert list(record) == list(LINE_FIELDS)
        assert record["table"] == "appointments"
        assert re.fullmatch(r"[0-9a-f]{32}", record["event_id"])
        seq = record["sequence_number"]
        assert 21 <= len(seq) <= 40 and seq[0] != "0", seq
        key = record["keys"]["appointment_id"]
        assert re.fullmatch(r"apt-\d{7}", key)
        if record["event_name"] == "REMOVE":
            assert record["new_image"] is None and record["old_image"]["appointment_id"] == key
        else:
            assert isinstance(record["new_image"], dict)
        if record["event_name"] == "INSERT":
            assert record["old_image"] is None
        if record["event_name"] == "MODIFY":
            assert isinstance(record["old_image"], dict)
        if "/late-" not in rel:
            first_folder[record["event_id"]] = min(folder_date, first_folder.get(record["event_id"], folder_date))
    # The sink files a record under the UTC date of its approximate_creation_time (copies go later).
    for rel, folder_date, _, record in sample["valid"]:
        utc_date = parse_ts(record["approximate_creation_time"]).date()
        if "/late-" in rel:
            assert folder_date > utc_date
        else:
            assert first_folder[record["event_id"]] == utc_date
    # Copies of one event_id are byte-identical, as in a healthy stream.
    texts = defaultdict(set)
    for _, _, _, text in sample["lines"]:
        if line_problem(text) is None:
            texts[json.loads(text)["event_id"]].add(text)
    assert all(len(copies) == 1 for copies in texts.values())


def test_changes_tell_a_consistent_story(sample):
    for aid, changes in sample["changes"].items():
        times = [parse_ts(r["approximate_creation_time"]) for r in changes]
        assert times == sorted(times) or max(abs((a - b).total_seconds()) for a, b in zip(times, sorted(times))) < 2, aid
        for before, after in zip(changes, changes[1:]):
            if after["event_name"] in ("MODIFY", "REMOVE"):
                assert after["old_image"] == before["new_image"], aid
            if after["event_name"] == "INSERT":
                assert before["event_name"] == "REMOVE", aid
        assert changes[0]["event_name"] == "INSERT", aid
    assert len(sample["changes"]) == N


def test_life_cycle_changes_are_present(sample):
    kinds = Counter()
    for aid, changes in sample["changes"].items():
        names = [r["event_name"] for r in changes]
        kinds.update(names)
        if "REMOVE" in names and "INSERT" in names[names.index("REMOVE"):]:
            kinds["recreated"] += 1
        for r in changes:
            old, new = r["old_image"], r["new_image"]
            if r["event_name"] != "MODIFY":
                continue
            if old["status"] == "BOOKED" and new["status"] != "BOOKED":
                kinds["status_" + new["status"]] += 1
            if old.get("channel", "absent") != new.get("channel", "absent"):
                kinds["channel_change"] += 1
            if parse_ts(old["start_time"]) and parse_ts(new["start_time"]) and parse_ts(old["start_time"]).date() != parse_ts(new["start_time"]).date():
                kinds["rescheduled_to_another_day"] += 1
    for kind in ("INSERT", "MODIFY", "REMOVE", "recreated", "status_COMPLETED", "status_NO_SHOW", "status_CANCELLED",
                 "channel_change", "rescheduled_to_another_day"):
        assert kinds[kind] > 0, (kind, kinds)
    assert kinds["REMOVE"] < 0.1 * N


def test_duplicates_in_one_file_and_across_folders(sample):
    per_file = Counter((rel, text) for rel, _, _, text in sample["lines"] if line_problem(text) is None)
    assert any(count == 2 for count in per_file.values())
    folders = defaultdict(set)
    for _, folder_date, _, record in sample["valid"]:
        folders[record["event_id"]].add(folder_date)
    assert any(len(dates) > 1 for dates in folders.values())


def test_out_of_order_lines_and_late_files(sample):
    by_file = defaultdict(list)
    for rel, _, number, record in sample["valid"]:
        by_file[rel].append((number, record))
    reversed_pairs = 0
    for rel, records in by_file.items():
        last_seen = {}
        for _, record in sorted(records, key=lambda x: x[0]):
            key, seq = record["keys"]["appointment_id"], int(record["sequence_number"])
            if key in last_seen and seq < last_seen[key]:
                reversed_pairs += 1
            last_seen[key] = max(seq, last_seen.get(key, 0))
    assert reversed_pairs > 0

    winner_folder = {}
    for rel, folder_date, _, record in sample["valid"]:
        key = record["keys"]["appointment_id"]
        if record["event_id"] == sample["changes"][key][-1]["event_id"]:
            winner_folder[key] = min(folder_date, winner_folder.get(key, folder_date))
    late = [(folder_date, record) for rel, folder_date, _, record in sample["valid"] if "/late-" in rel]
    assert late
    for folder_date, record in late:
        key = record["keys"]["appointment_id"]
        assert record["event_id"] != sample["changes"][key][-1]["event_id"], "a late change must never win"
    assert any(folder_date > winner_folder[record["keys"]["appointment_id"]] for folder_date, record in late)


def test_sequence_numbers_vary_in_length_and_cross_from_21_to_22_digits(sample):
    lengths = Counter(len(r["sequence_number"]) for _, _, _, r in sample["valid"])
    assert {21, 22, 30, 40} <= set(lengths)
    crossings = 0
    for changes in sample["changes"].values():
        seqs = [r["sequence_number"] for r in changes]
        if any(len(a) == 21 and len(b) == 22 for a, b in zip(seqs, seqs[1:])):
            crossings += 1
            # The trap is real: plain string order picks another winner than integer order.
            assert max(seqs) != seqs[-1] or len(seqs[-1]) == 22
            assert max(seqs, key=int) == seqs[-1]
    assert crossings > 0
    assert any(max(r["sequence_number"] for r in c) != c[-1]["sequence_number"] for c in sample["changes"].values())


def test_timestamps_use_offsets_and_fractions_of_every_length(sample):
    suffixes, fractions = Counter(), Counter()
    for _, _, _, record in sample["valid"]:
        stamps = [record["approximate_creation_time"]]
        for image in (record["new_image"], record["old_image"]):
            if image:
                stamps += [image["created_at"], image["updated_at"], image["start_time"]]
        for stamp in stamps:
            m = TS_RE.fullmatch(stamp)
            if m:
                suffixes[m.group(8)] += 1
                fractions[len(m.group(7) or "")] += 1
    assert {"Z", "+00:00", "-04:00", "+05:30"} <= set(suffixes)
    assert set(fractions) == set(range(10))
    assert suffixes["Z"] > 0.5 * sum(suffixes.values())


def test_malformed_lines_of_every_kind(sample):
    problems = sample["problems"]
    for kind in ("blank_line", "not_json", "truncated_json", "json_array", "missing_event_id", "unknown_event_name",
                 "sequence_number_json_number", "sequence_number_letters", "creation_time_space",
                 "creation_time_impossible_date"):
        assert problems[kind] > 0, (kind, problems)
    assert sum(problems.values()) < 0.02 * len(sample["lines"])
    unknown = [json.loads(t) for _, _, _, t in sample["lines"] if line_problem(t) == "unknown_event_name"]
    assert unknown[0]["event_name"] == "UPSERT"
    bad_times = {json.loads(t)["approximate_creation_time"] for _, _, _, t in sample["lines"] if (line_problem(t) or "").startswith("creation_time")}
    assert "2026-02-30T10:00:00Z" in bad_times
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", t) for t in bad_times)


def test_invalid_images_some_fixed_later_some_final(sample):
    seen, final_invalid, fixed = Counter(), 0, 0
    for aid, changes in sample["changes"].items():
        had_invalid = False
        for r in changes:
            if r["new_image"] is not None:
                problems = image_problems(r["new_image"], aid)
                seen.update(problems)
                had_invalid = had_invalid or bool(problems)
        winner = changes[-1]
        winner_invalid = winner["new_image"] is not None and bool(image_problems(winner["new_image"], aid))
        final_invalid += winner_invalid
        fixed += had_invalid and not winner_invalid
    for kind in ("status_lower_case", "duration_float", "duration_string", "duration_too_long", "duration_too_short",
                 "missing_student_id", "empty_advisor_id", "start_time_without_offset", "appointment_id_mismatch"):
        assert seen[kind] > 0, (kind, seen)
    assert "bad_status" not in seen
    assert 0 < final_invalid < 0.05 * N
    assert fixed > 0


def test_images_carry_realistic_values(sample):
    advisors = {row["advisor_id"] for row in csv.DictReader((sample["root"] / "advisors" / "advisors.csv").open(newline="", encoding="utf-8"))}
    images = [r["new_image"] for _, _, _, r in sample["valid"] if r["new_image"]]
    used = {i["advisor_id"] for i in images if i.get("advisor_id")}
    assert used - advisors, "some appointments must have an advisor missing from advisors.csv"
    assert any(set(i) - ITEM_ATTRIBUTES for i in images), "some images carry an unknown extra attribute"
    channels = Counter(i["channel"] if "channel" in i else "absent" for i in images)
    assert {"web", "mobile", "walk_in", "phone", None, "absent"} <= set(channels)
    leads = [parse_ts(i["start_time"]) - parse_ts(i["created_at"]) for i in images if parse_ts(i["start_time"])]
    assert any(lead < dt.timedelta(0) for lead in leads), "a few walk-ins are created after they start"
    assert sum(dt.timedelta(0) <= lead <= dt.timedelta(days=30) for lead in leads) > 0.9 * len(leads)
    assert 5 <= len({i["department"] for i in images}) <= 8
    assert len({i["student_id"] for i in images if "student_id" in i}) <= N // 3
    starts = {parse_ts(i["start_time"]).date() for i in images if parse_ts(i["start_time"])}
    assert min(starts) >= dt.date(2026, 9, 1) - dt.timedelta(days=3)


def test_advisors_csv_is_rfc4180_with_tricky_rows(sample):
    path = sample["root"] / "advisors" / "advisors.csv"
    raw = path.read_bytes().decode("utf-8")
    assert raw.startswith("advisor_id,advisor_name,department,daily_capacity_minutes\r\n")
    assert '"Pat ""PJ"" Smith"' in raw
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert len(rows) == N // 25
    ids = [row["advisor_id"] for row in rows]
    assert len(ids) == len(set(ids))
    assert any("," in row["advisor_name"] for row in rows)
    assert any(row["advisor_name"] == 'Pat "PJ" Smith' for row in rows)
    assert any(not re.fullmatch(r"[1-9]\d*", row["daily_capacity_minutes"]) for row in rows)
    assert all(row["department"] for row in rows)


def test_cli_writes_and_replaces_only_with_force(tmp_path, capsys):
    out = tmp_path / "sample"
    assert main(["sample-data", "--out", str(out), "--appointments", "20", "--seed", "5", "--days", "3", "--start", "2027-01-10"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "20 appointments" in printed[0]
    before = read_tree(out)
    assert main(["sample-data", "--out", str(out), "--appointments", "20"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["sample-data", "--out", str(out), "--appointments", "20", "--seed", "5", "--days", "3", "--start", "2027-01-10", "--force"]) == 0
    assert read_tree(out) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--appointments", "0"], "--appointments"),
        (["--appointments", "abc"], "--appointments must be an integer"),
        (["--seed", "1.5"], "--seed must be an integer"),
        (["--days", "0"], "--days"),
        (["--start", "2026-02-30"], "--start"),
        (["--start", "2026/09/01"], "--start"),
        (["--force"], "holds more than a previous sample"),
        ([], "not empty"),
    ],
)
def test_cli_misuse_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(["sample-data", "--out", str(out), *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advising sample-data: error:") and message in lines[0], captured.err
    assert (out / "precious.txt").read_text() == "keep me"
