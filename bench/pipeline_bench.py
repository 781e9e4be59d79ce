"""Pipeline benchmark: full runs over generated change logs of several sizes, in Spark local mode, with the
default settings (driver memory sized from the machine, shuffle partitions from the input). Prints, per
size: seconds per stage, events/s, CPU seconds (and the JVM's share of them spent by the JIT compiler, the
task threads and the garbage collector), peak memory of the driver JVM and of Python, and a scaling table
with the time per million appointments.

    .venv/bin/python bench/pipeline_bench.py --appointments 100000
    .venv/bin/python bench/pipeline_bench.py --appointments 100000 1000000 3000000 --incremental
    .venv/bin/python bench/pipeline_bench.py --appointments 10000000 --work /big/disk   # once, not in tests

Each size runs in a fresh process (its own JVM, so peak memory is that run's), over a log generated once
and kept under --work (keyed by size, seed and days); each run publishes into a fresh output folder.
--incremental adds the nightly case: a full run over the history up to the last day of full traffic, then
that day's files as an incremental run (each in its own process), and prints the nightly run's share of
the full run. --floor adds Spark's floor (issue 12) on the same log, in a fresh process of its own: plain
PySpark doing only the unavoidable part of a full run (read every line, parse it once with the line schema,
the image as a struct; keep the latest change per appointment with one window; write one Parquet table),
and prints the full run's multiple of it; with --incremental also the floor's own history and night (the
night's lines parsed, the touched appointments' old winners looked up, the latest of both written: less than
any night must do) and the floor's night as a share of the floor's full run. --warm repeats each run in the
same JVM once its first run is done (a night's repeat extends a copy of the same history): the second figure
is the run without a fresh JVM's class loading and JIT warm-up, which the first pays.
CPU seconds (JVM + Python, user + system) are the figure to compare on a shared machine: wall time
there says as much about the neighbours as about the pipeline. --check-sample N compares N sampled
appointments of the published tables with the reference implementation (tests/reference), over the files
the run had in scope.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("plan", "read_parse", "compact", "tables", "quality", "publish")


def _stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from the text of a /proc .../stat file."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_cpu_seconds(pid: int) -> float:
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def _jvm_thread_cpu_seconds(pid: int) -> dict:
    """CPU seconds of the JVM's live threads by kind: the JIT's compiler threads, Spark's task threads, the
    garbage collector's. A short run spends about as much on compiling Spark's code as on running the tasks
    (README, Benchmarks); this is where that shows."""
    kinds = {"jit": 0.0, "tasks": 0.0, "gc": 0.0}
    for path in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            stat = path.read_text()
        except OSError:  # the thread ended between the listing and the read
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]  # the kernel keeps the first 15 characters
        kind = ("jit" if "CompilerThre" in name else "tasks" if name.startswith("Executor task")
                else "gc" if name.startswith(("GC Thread", "G1 ")) else None)
        if kind is not None:
            kinds[kind] += _stat_cpu_seconds(stat)
    return kinds


def _proc_peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(args) -> dict:
    """One full run in this process; returns its figures."""
    sys.path.insert(0, str(ROOT))
    from advising.sample_data import generate
    from jobs.config import RunConfig
    from jobs.pipeline import is_short_run, run_pipeline
    from jobs.session import get_session, local_jvm

    log_dir = Path(args.work) / f"log-{args.one}-{args.seed}-{args.days}"
    if not (log_dir / "appointments").is_dir():
        summary = generate(log_dir, appointments=args.one, seed=args.seed, days=args.days, force=True)
        print(f"generated: {summary.line()}", file=sys.stderr)
    # full: the whole log into a fresh output; history: all but the last day, then nightly: that last day
    # on top of it (an incremental run, in its own fresh process like a nightly EMR step).
    # The floor's cases are the same split, each into a table of its own (out-floor-history-N, ...).
    floor = args.case.startswith("floor")
    out = Path(args.work) / {"full": f"out-{args.one}", "history": f"out-nightly-{args.one}",
                             "nightly": f"out-nightly-{args.one}"}.get(args.case, f"out-{args.case}-{args.one}")
    as_of = None
    if args.case.endswith(("history", "nightly")):
        night = _night(log_dir)
        as_of = night - dt.timedelta(days=1) if args.case.endswith("history") else night
    if args.case != "nightly":
        shutil.rmtree(out, ignore_errors=True)

    config = RunConfig(input=str(log_dir), output=str(out), timezone=args.timezone, full=args.case != "nightly", as_of=as_of,
                       skip_quality=args.skip_quality)
    # --warm repeats the run in this JVM; a night's repeat extends a copy of the history it started from.
    warm_out = Path(f"{out}-warm")
    if args.warm:
        shutil.rmtree(warm_out, ignore_errors=True)
        if args.case == "nightly":
            shutil.copytree(out, warm_out)

    # As `advising run` starts its JVM (jobs.pipeline.execute); the floor is plain PySpark with Spark's defaults.
    # The floor's night compiles with C1 only, as the pipeline's nights do (a 1M one 5.2 s against 7.0 s tiered).
    short_run = args.case == "floor-nightly" if floor else is_short_run(config)
    started = time.monotonic()
    spark = get_session("advising-bench", short_run=short_run)
    session_seconds = time.monotonic() - started
    jvm = local_jvm(spark).pid
    cpu_before = _proc_cpu_seconds(jvm) + _proc_cpu_seconds(os.getpid())
    threads_before = _jvm_thread_cpu_seconds(jvm)
    load_before = os.getloadavg()
    began = time.monotonic()
    if floor:
        result = spark_floor(spark, _floor_folders(log_dir, args.case, as_of), out,
                             history=Path(args.work) / f"out-floor-history-{args.one}" if args.case == "floor-nightly" else None)
    else:
        result = run_pipeline(spark, config, log=lambda line: None)
    seconds = time.monotonic() - began
    cpu = _proc_cpu_seconds(jvm) + _proc_cpu_seconds(os.getpid()) - cpu_before
    threads = {kind: used - threads_before[kind] for kind, used in _jvm_thread_cpu_seconds(jvm).items()}
    figures = {
        "case": args.case,
        "mode": result.mode,
        "appointments": args.one,
        "events": result.events_read,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "jvm_thread_cpu_seconds": threads,
        "events_per_second": result.events_read / seconds,
        "stages": result.stage_seconds,
        "rows": result.rows,
        "quality": result.quality,
        "session_seconds": session_seconds,
        "short_run": short_run,
        "driver_memory": spark.sparkContext.getConf().get("spark.driver.memory"),
        "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "jvm_peak_mib": _proc_peak_rss_mib(jvm),
        "python_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load": [load_before, os.getloadavg()],
        "output": str(out),
        "input": str(log_dir),
    }
    if args.warm and not floor:
        began = time.monotonic()
        again = run_pipeline(spark, dataclasses.replace(config, output=str(warm_out)), log=lambda line: None)
        figures["warm"] = {"seconds": time.monotonic() - began, "stages": again.stage_seconds, "mode": again.mode}
        shutil.rmtree(warm_out, ignore_errors=True)
    spark.stop()
    if args.check_sample and not floor:
        try:
            figures["reference_check"] = check_sample(log_dir, out, args.timezone, args.check_sample, as_of)
        except Exception as exc:  # the run's figures stand on their own
            figures["reference_check"] = f"could not compare: {type(exc).__name__}: {exc}"
    return figures


def _floor_changes(spark, folders):
    """The floor's parse: every line of these folders read and parsed once with the line schema (the image as a
    struct), with the appointment id beside it; returns the changes and the observation counting the lines."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from jobs.compaction import IMAGE_SCHEMA
    from jobs.contract import LINE_SCHEMA

    schema = T.StructType([T.StructField(f.name, IMAGE_SCHEMA) if f.name == "new_image" else f for f in LINE_SCHEMA.fields])
    lines = Observation("lines")
    changes = (
        spark.read.option("recursiveFileLookup", "true").text([str(folder) for folder in folders])
        .observe(lines, F.count(F.lit(1)).alias("lines"))
        .select(F.from_json("value", schema).alias("j"))
        .select("j.*", F.col("j.keys.appointment_id").alias("appointment_id"))
        .drop("keys")
    )
    return changes, lines


def _write_latest(changes, out: Path) -> None:
    """The floor's compaction: the latest change per appointment by one window, written as one Parquet table."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy("appointment_id").orderBy(F.col("sequence_number").desc(), F.col("event_id").desc())
    changes.withColumn("_n", F.row_number().over(latest)).filter("_n = 1").drop("_n").write.parquet(str(out))


def spark_floor(spark, folders, out: Path, history: Optional[Path] = None):
    """Spark's floor on these log folders (issue 12): read every line, parse it once with the line schema (the
    image as a struct), keep the latest change per appointment with one window, write one Parquet table. No
    contract rules beyond that: what the pipeline costs above it is its own.

    With `history` (a floor's table of the log before these folders) it is a night's floor: the night's lines
    parsed, the touched appointments' old winners looked up in that table, the latest of both written. Even
    that leaves out what a night must also do (the published tables' reached partitions, the aggregates, the
    quarantine, the gate), so a night of the pipeline cannot cost less. Returns a summary shaped like the
    pipeline's."""
    from types import SimpleNamespace

    changes, lines = _floor_changes(spark, folders)
    if history is not None:
        old = spark.read.parquet(str(history)).join(changes.select("appointment_id"), "appointment_id", "left_semi")
        changes = old.unionByName(changes)
    _write_latest(changes, out)
    return SimpleNamespace(mode="floor", events_read=lines.get["lines"], stage_seconds={}, rows={}, quality="no gate: Spark's floor")


def _floor_folders(log_dir: Path, case: str, as_of: Optional[dt.date]) -> list:
    """The log folders a floor case reads: the whole log, the history up to `as_of`, or the night of `as_of`."""
    if case == "floor":
        return [log_dir / "appointments"]
    folders = {dt.date.fromisoformat(folder.name.split("=", 1)[1]): folder for folder in (log_dir / "appointments").iterdir()}
    return [folders[day] for day in sorted(folders) if (day <= as_of if case == "floor-history" else day == as_of)]


def _night(log_dir: Path) -> dt.date:
    """The last ingest date with a full day's traffic (at least half the median day's bytes): the generated
    log tails off into a few late files, and a night of those would flatter the nightly run."""
    sizes = {
        dt.date.fromisoformat(folder.name.split("=", 1)[1]): sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        for folder in (log_dir / "appointments").iterdir()
    }
    median = sorted(sizes.values())[len(sizes) // 2]
    return max(day for day, size in sizes.items() if size >= median / 2)


def check_sample(log_dir: Path, out: Path, timezone: str, size: int, as_of=None) -> str:
    """The published appointments against the reference implementation (tests/reference) on a sample:
    the reference replays only the change-log lines of the sampled appointment ids (rules 2-5 work per
    appointment, so that is the whole history of each)."""
    import gzip
    import random
    import tempfile

    from tests.reference.compare import diff_tables, read_published
    from tests.reference.contract import compute_tables

    published = read_published(str(out), "appointments")
    wanted = set(random.Random(1).sample(sorted(row["appointment_id"] for row in published), size))
    with tempfile.TemporaryDirectory(prefix="bench-sample-") as sample:
        for path in sorted((log_dir / "appointments").rglob("*.jsonl*")):
            ingest_date = dt.date.fromisoformat(path.relative_to(log_dir / "appointments").parts[0].split("=", 1)[1])
            if as_of is not None and ingest_date > as_of:
                continue
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                kept = [line for line in handle if _key(line) in wanted]
            if kept:
                target = Path(sample) / path.relative_to(log_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                with (gzip.open if path.suffix == ".gz" else open)(target, "wt", encoding="utf-8") as handle:
                    handle.writelines(kept)
        expected = [row for row in compute_tables(sample, timezone)["appointments"] if row["appointment_id"] in wanted]
    got = [row for row in published if row["appointment_id"] in wanted]
    problems = diff_tables("appointments", expected, got)
    return f"{len(wanted)} sampled appointments: " + ("equal to the reference" if not problems else "; ".join(problems)[:500])


def _key(line: str) -> str:
    """The appointment id of a change-log line: its first "appointment_id" (the key comes before the image)."""
    start = line.find('"appointment_id":')
    return line[start + len('"appointment_id":'):].lstrip(' "').split('"', 1)[0] if start >= 0 else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appointments", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--work", default="/tmp/advising-bench")
    parser.add_argument("--timezone", default="America/New_York")
    parser.add_argument("--skip-quality", action="store_true", help="time the run without the quality gate")
    parser.add_argument("--check-sample", type=int, default=0, metavar="N", help="compare N sampled appointments with the reference")
    parser.add_argument("--incremental", action="store_true",
                        help="also a nightly run: a full run up to the last full day, then that day incrementally")
    parser.add_argument("--nightly-only", action="store_true",
                        help="only the history and nightly runs (for sizes where one more full run costs too much)")
    parser.add_argument("--warm", action="store_true",
                        help="also each run again in the same JVM (JIT and classes warm): what the run costs without a fresh JVM's warm-up")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # internal: one size, JSON out
    parser.add_argument("--floor", action="store_true", help="also Spark's floor on each log (plain PySpark, see above)")
    parser.add_argument("--case", default="full", choices=("full", "floor", "history", "nightly", "floor-history", "floor-nightly"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one is not None:
        print(json.dumps(run_one(args)))
        return 0

    print(f"machine: {describe()}")
    results = []
    cases = ("history", "nightly") if args.nightly_only else ("full", "history", "nightly") if args.incremental else ("full",)
    if args.floor:
        floors = ("floor",) if not (args.incremental or args.nightly_only) else \
            ("floor-history", "floor-nightly") if args.nightly_only else ("floor", "floor-history", "floor-nightly")
        cases = floors + cases
    for size in args.appointments:
        for case in cases:
            child = [sys.executable, __file__, "--one", str(size), "--case", case, "--seed", str(args.seed),
                     "--days", str(args.days), "--work", args.work, "--timezone", args.timezone,
                     "--check-sample", str(args.check_sample if case != "history" else 0)]
            if args.skip_quality:
                child.append("--skip-quality")
            if args.warm:
                child.append("--warm")
            done = subprocess.run(child, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{size} appointments, {case}: failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
                continue
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(figures)
            stages = " ".join(f"{k}={v:.1f}s" for k, v in figures["stages"].items())
            print(
                f"RESULT appointments={size} case={case} mode={figures['mode']} events={figures['events']} "
                f"seconds={figures['seconds']:.1f} cpu_seconds={figures['cpu_seconds']:.1f} "
                f"({' '.join(f'{kind}={value:.1f}' for kind, value in figures['jvm_thread_cpu_seconds'].items())}) "
                f"events_per_second={figures['events_per_second']:,.0f} {stages} "
                f"jvm_peak={figures['jvm_peak_mib']:,.0f}MiB python_peak={figures['python_peak_mib']:,.0f}MiB "
                f"driver_memory={figures['driver_memory']} shuffle_partitions={figures['shuffle_partitions']} "
                f"jit={'C1 only (short run)' if figures['short_run'] else 'tiered'} "
                f"load={'/'.join(f'{x:.1f}' for x in figures['load'][0])}->{'/'.join(f'{x:.1f}' for x in figures['load'][1])}"
            )
            if "warm" in figures:
                warm = figures["warm"]
                print(f"  warm, again in the same JVM ({warm['mode']}): {warm['seconds']:.1f} s ({warm['seconds'] / figures['seconds']:.0%} of the first run; "
                      + " ".join(f"{k}={v:.1f}s" for k, v in warm["stages"].items()) + ")")
            if "reference_check" in figures:
                print(f"  reference: {figures['reference_check']}")
            print(f"  {figures['quality'][:160]}")
            if case == "nightly":
                full = next(f for f in results if f["appointments"] == size and f["case"] in ("full", "history"))
                print(f"  nightly run = {figures['seconds'] / full['seconds']:.1%} of the {full['case']} run's seconds")
                if "warm" in figures and "warm" in full:
                    print(f"  warm: nightly run = {figures['warm']['seconds'] / full['warm']['seconds']:.1%} of the warm {full['case']} run")
            same = {f["case"]: f for f in results if f["appointments"] == size}
            if case == "full" and "floor" in same:
                print(f"  full run = {figures['seconds'] / same['floor']['seconds']:.1f} x Spark's floor ({same['floor']['seconds']:.1f} s)")
            if case == "floor-nightly" and "floor" in same:
                print(f"  the floor's night = {figures['seconds'] / same['floor']['seconds']:.1%} of the floor's full run")
            if case == "nightly" and "floor-nightly" in same:
                print(f"  nightly run = {figures['seconds'] / same['floor-nightly']['seconds']:.1f} x the floor's night "
                      f"({same['floor-nightly']['seconds']:.1f} s)")
    if results:
        print()
        print("| appointments | run | events | seconds | s per 1M appts | CPU s | JIT CPU s | task CPU s | events/s | "
              + " | ".join(STAGES) + " | JVM peak MiB | Python peak MiB |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|---:|")
        for f in results:
            stages = " | ".join(f"{f['stages'].get(s, 0.0):.1f}" for s in STAGES)
            print(
                f"| {f['appointments']:,} | {f['case']} | {f['events']:,} | {f['seconds']:.1f} | {f['seconds'] / f['appointments'] * 1e6:.1f} | "
                f"{f['cpu_seconds']:.1f} | {f['jvm_thread_cpu_seconds']['jit']:.1f} | {f['jvm_thread_cpu_seconds']['tasks']:.1f} | "
                f"{f['events_per_second']:,.0f} | {stages} | {f['jvm_peak_mib']:,.0f} | {f['python_peak_mib']:,.0f} |"
            )
    return 0 if len(results) == len(args.appointments) * len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
