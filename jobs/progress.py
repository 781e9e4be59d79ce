"""Progress of a run as it happens: a line when a stage starts, a line when it ends with its seconds,
and in between, on a terminal only, a live bar of Spark tasks done / total.

jobs.pipeline wraps every stage of the run (plan, read_parse, compact, tables, quality, publish) in
`stage(...)`; this module only reports, it never touches data or the run's outcome. The bar is fed by
Spark's status tracker (the same counts the Spark UI shows) and drawn on one line rewritten in place;
in a log file or a pipe there is no bar, so logs hold the plain start and end lines only.

Shipped to the cluster with jobs/: Python 3.9 syntax.
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Optional, TextIO, Tuple

BAR_WIDTH = 24
# Clears from the cursor to the end of the line, so a shorter redraw leaves no tail of the previous one.
_CLEAR_LINE = "\r\x1b[K"


class _TaskCounter:
    """Tasks done / total over every Spark stage seen active since the counter was made.

    A Spark stage is only listed while it runs, so each one seen is remembered and re-read until the
    end: its final count stays in the total after it finishes."""

    def __init__(self, tracker):
        self._tracker = tracker
        self._seen: Dict[int, Tuple[int, int]] = {}

    def read(self) -> Tuple[int, int]:
        for stage_id in set(self._tracker.getActiveStageIds()) | set(self._seen):
            info = self._tracker.getStageInfo(stage_id)
            if info is not None:
                self._seen[stage_id] = (info.numCompletedTasks, info.numTasks)
        return sum(done for done, _ in self._seen.values()), sum(total for _, total in self._seen.values())


def bar_line(name: str, done: int, total: int, seconds: float) -> str:
    """The live line: `tables [##########--------------] 120/288 tasks, 14 s`."""
    filled = BAR_WIDTH * done // total if total else 0
    return f"{name} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total} tasks, {seconds:.0f} s"


class _LiveBar:
    """Redraws the bar every `interval` seconds from a daemon thread until stopped."""

    def __init__(self, name: str, stream: TextIO, tracker, interval: float, clock: Callable[[], float]):
        self._name, self._stream, self._interval, self._clock = name, stream, interval, clock
        self._counter = _TaskCounter(tracker)
        self._started = clock()
        self._stop = threading.Event()
        self._drawn = False
        self._thread = threading.Thread(target=self._loop, name=f"progress-{name}", daemon=True)

    def start(self) -> "_LiveBar":
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                done, total = self._counter.read()
            except Exception:  # the bar is cosmetic: a JVM going away must not add a traceback to the run's own error
                return
            if total:
                self._stream.write(_CLEAR_LINE + bar_line(self._name, done, total, self._clock() - self._started))
                self._stream.flush()
                self._drawn = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._drawn:
            self._stream.write(_CLEAR_LINE)


def _spark_tracker():
    """The status tracker of the running SparkContext, if there is one."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    return context.statusTracker() if context is not None else None


@contextmanager
def stage(
    name: str,
    on_end: Optional[Callable[[float], None]] = None,
    stream: Optional[TextIO] = None,
    tracker=None,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
):
    """Report one stage: `name: started`, the live bar on a terminal, then `name: done in N.N s` (or
    `failed after`). `on_end` receives the stage's seconds, whether it succeeded or not."""
    stream = sys.stdout if stream is None else stream
    started = clock()
    stream.write(f"{name}: started\n")
    stream.flush()
    bar = None
    if stream.isatty():
        tracker = tracker if tracker is not None else _spark_tracker()
        if tracker is not None:
            bar = _LiveBar(name, stream, tracker, interval, clock).start()
    outcome = "failed after"
    try:
        yield
        outcome = "done in"
    finally:
        if bar is not None:
            bar.stop()
        seconds = clock() - started
        stream.write(f"{name}: {outcome} {seconds:.1f} s\n")
        stream.flush()
        if on_end is not None:
            on_end(seconds)
