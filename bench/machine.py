"""What every benchmark prints first: the machine its figures come from."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """CPU model, cores, memory, Python and the load average at the start (figures on a busy machine are upper bounds)."""
    cpu = platform.processor() or "unknown CPU"
    memory = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()} on {platform.system()} "
        f"{platform.release()}, load average {load} (1/5/15 min) at start"
    )
