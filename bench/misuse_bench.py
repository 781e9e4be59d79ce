"""Misuse benchmark: seconds from typing `advising run` with a mistake to its one-line answer (exit 2),
for each kind of misuse that needs no Spark, with the machine it ran on. The target is well under 2 s:
these checks run before the JVM starts (tests/advising/test_run_misuse.py proves no JVM is started).

    .venv/bin/python bench/misuse_bench.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # bench/machine.py: scripts run with bench/ on sys.path


def _children_cpu() -> float:
    """CPU seconds used by finished child processes: the part of the answer a busy machine cannot inflate."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cases(root: Path) -> dict:
    good = ["--input", str(root / "in"), "--output", str(root / "out")]
    return {
        "input path missing": ["--input", str(root / "missing"), "--output", str(root / "out")],
        "no appointments/ folder": ["--input", str(root / "no-log"), "--output", str(root / "out")],
        "bad date": [*good, "--as-of", "2026-02-30"],
        "unknown time zone": [*good, "--timezone", "Mars/Olympus"],
        "malformed option": [*good, "--as-of"],
        "unknown option": [*good, "--fulll"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"machine: {describe()}")
    advising = str(Path(sys.executable).with_name("advising"))
    with tempfile.TemporaryDirectory(prefix="advising-misuse-") as tmp:
        root = Path(tmp)
        (root / "in" / "appointments").mkdir(parents=True)
        (root / "no-log").mkdir()
        worst = 0.0
        for name, case in cases(root).items():
            seconds, cpu = [], []
            for _ in range(args.repeat):
                began, used = time.monotonic(), _children_cpu()
                done = subprocess.run([advising, "run", *case], capture_output=True, text=True)
                seconds.append(time.monotonic() - began)
                cpu.append(_children_cpu() - used)
                if done.returncode != 2 or done.stderr.count("\n") != 1:
                    print(f"UNEXPECTED {name}: exit {done.returncode}: {done.stderr!r}")
                    return 1
            worst = max(worst, max(seconds))
            print(
                f"{name:24s} wall median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s; "
                f"CPU median {statistics.median(cpu):.2f} s: {done.stderr.strip()[:80]}"
            )
    print(f"RESULT misuse_cases={len(cases(root))} repeat={args.repeat} worst_seconds={worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
