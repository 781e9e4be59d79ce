"""Report benchmark: seconds for `advising report` (read the tables with pyarrow, compute every chart,
write the HTML) over the tables of N appointments, with the machine it ran on.

    .venv/bin/python bench/report_bench.py --appointments 1000000
    .venv/bin/python bench/report_bench.py --tables data/tables        # any published tables

Without --tables, the tables are made once under --work (sample data, then one pipeline run without the
quality gate, which the report does not need) and kept, keyed by size and seed, so reruns time the report only.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path


def make_tables(work: Path, appointments: int, seed: int, days: int) -> Path:
    from advising.sample_data import generate

    log_dir = work / f"log-{appointments}-{seed}-{days}"
    tables = work / f"tables-{appointments}-{seed}-{days}"
    if not (tables / "appointments").is_dir():
        if not (log_dir / "appointments").is_dir():
            print(f"generated: {generate(log_dir, appointments=appointments, seed=seed, days=days, force=True).line()}")
        advising = Path(sys.executable).with_name("advising")
        subprocess.run(
            [str(advising), "run", "--input", str(log_dir), "--output", str(tables), "--skip-quality"], check=True
        )
    return tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--work", default="/tmp/advising-report-bench")
    parser.add_argument("--tables", default=None, help="time the report over these tables instead")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from advising.report import build_report, read_echarts, render_html, write_output

    print(f"machine: {describe()}")
    work = Path(args.work)
    tables = Path(args.tables) if args.tables else make_tables(work, args.appointments, args.seed, args.days)
    out = work / "report.html"
    timings = []
    for _ in range(args.repeat):
        began = time.monotonic()
        report = build_report(str(tables))
        read = time.monotonic()
        write_output(render_html(report, read_echarts()), str(out))
        done = time.monotonic()
        timings.append((done - began, read - began))
    total, reading = min(timings)
    print(
        f"RESULT tables={tables} appointments={report.facts.get('appointments')} charts_with_data="
        f"{sum(c.option is not None for c in report.charts)}/{len(report.charts)} html_bytes={out.stat().st_size:,} "
        f"best_seconds={total:.2f} (read+compute {reading:.2f}) median_seconds={statistics.median(t for t, _ in timings):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
