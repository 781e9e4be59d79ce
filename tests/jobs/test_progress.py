"""Stage progress: plain start/end lines in a log or a pipe, and a live task bar on a real terminal."""
from __future__ import annotations

import io
import os
import select
import threading
from pathlib import Path

import pytest

from jobs.progress import bar_line, stage


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_not_a_terminal_gets_a_start_line_and_an_end_line_with_seconds():
    stream, clock, recorded = io.StringIO(), Clock(), []
    with stage("read_parse", on_end=recorded.append, stream=stream, clock=clock):
        clock.now += 12.34
    assert stream.getvalue() == "read_parse: started\nread_parse: done in 12.3 s\n"
    assert recorded == [pytest.approx(12.34)]


def test_a_failing_stage_says_so_and_still_reports_its_seconds():
    stream, clock, recorded = io.StringIO(), Clock(), []
    with pytest.raises(ValueError):
        with stage("quality", on_end=recorded.append, stream=stream, clock=clock):
            clock.now += 2.0
            raise ValueError("boom")
    assert stream.getvalue() == "quality: started\nquality: failed after 2.0 s\n"
    assert recorded == [2.0]


def test_bar_line_shows_tasks_done_of_total():
    assert bar_line("tables", 0, 8, 1.2) == "tables [------------------------] 0/8 tasks, 1 s"
    assert bar_line("tables", 4, 8, 3.0) == "tables [############------------] 4/8 tasks, 3 s"
    assert bar_line("tables", 8, 8, 9.6) == "tables [########################] 8/8 tasks, 10 s"


def read_until(fd, wanted: bytes, seen: bytearray, limit=600.0) -> bool:
    """Read the terminal's output until `wanted` shows up (or the pty stays silent for `limit` s)."""
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], limit)
        if not ready:
            return False
        seen += os.read(fd, 65536)
    return True


@pytest.mark.slow
def test_on_a_terminal_a_live_bar_follows_spark_tasks_and_is_cleared_at_the_end(spark, tmp_path):
    # GIVEN a real pseudo-terminal and a Spark job whose 6 tasks wait until the test lets them go
    controller, terminal = os.openpty()
    stream = os.fdopen(terminal, "w", buffering=1)
    release = tmp_path / "release"
    seen = bytearray()

    def wait_for_release(_):
        import time as _time

        while not release.exists():
            _time.sleep(0.05)  # the worker polls a file the test writes; the test itself never sleeps
        return [1]

    job = lambda: spark.sparkContext.parallelize(range(6), 6).mapPartitions(wait_for_release).count()
    try:
        # WHEN the stage runs the job
        with stage("tables", stream=stream, interval=0.05):
            worker = threading.Thread(target=job)
            worker.start()
            # THEN while the tasks are held, the bar shows 0 of 6 done
            assert read_until(controller, b"] 0/6 tasks", seen)
            release.write_text("go")
            worker.join()
        assert read_until(controller, b"tables: done in", seen)
    finally:
        stream.close()
        os.close(controller)
    text = seen.decode()
    assert text.startswith("tables: started\r\n")
    assert "\r\x1b[Ktables [------------------------] 0/6 tasks" in text
    # the bar is wiped before the end line, so the terminal keeps only the two plain lines
    assert "\r\x1b[Ktables: done in" in text
