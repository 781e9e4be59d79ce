"""Data-quality gate: validate the staged tables with Great Expectations before anything is published.

Place in the flow: the pipeline hands a `Gate` each frame as soon as it has made it (the change log and the
snapshot after compaction, each staged table once written), on a thread beside its next steps. Only a report with `passed`
(no failed critical expectation) lets it publish; otherwise the published tables stay as they were and
the run exits non-zero with `GateReport.summary_line()`. `write_report` leaves quality.json (and GX
data docs when they build) next to the run manifest.

- `suites`: what is checked (the reviewed, versioned form of docs/quality.md);
- `runner`: how it is checked (one GX validation per frame; examples for failures only);
- `report`: the verdict and what an analyst opens;
- `gx`: Great Expectations set up offline, in memory, quiet, with one Spark job per metric bundle.

This package ships to EMR: Python 3.9 syntax only.
"""
from jobs.quality.report import ExpectationOutcome, GateReport, write_report
from jobs.quality.runner import Gate
from jobs.quality.suites import CRITICAL, FRAME_ORDER, WARNING, WholeTables, suite_checks

__all__ = [
    "CRITICAL", "FRAME_ORDER", "WARNING", "ExpectationOutcome", "Gate", "GateReport", "WholeTables", "suite_checks",
    "write_report",
]
