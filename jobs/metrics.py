"""A run's summary as CloudWatch embedded metric format (EMF) lines: the step's log becomes its metrics.

Where it sits: jobs.pipeline.execute() prints these lines to stdout at the end of every run, the ones the
quality gate stopped included. Where stdout reaches CloudWatch Logs (EMR Serverless with the log group that
advising.emr.launch configures), CloudWatch extracts the metrics; infra/emr.yaml alarms when a day has no
SuccessfulRuns. Pure: a summary (or None for a run the gate stopped) and a timestamp in, JSON lines out;
it prints nothing, reads no clock and imports nothing from the control plane.

EMF specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""
from __future__ import annotations

import json
from typing import List

NAMESPACE = "Advising/Pipeline"
PIPELINE = "advising"
# The alarm in infra/emr.yaml watches this metric.
SUCCESSFUL_RUNS = "SuccessfulRuns"

# A run whose tables were already current ran no gate; one with --skip-quality published without it.
_GATE_PASSED_PREFIX = "quality gate passed"  # jobs.quality.QualityReport.summary_line()
_GATE_SKIPPED_PREFIX = "QUALITY GATE SKIPPED"  # jobs.pipeline._quality_gate


def gate_verdict(summary) -> str:
    """failed | passed | skipped | not_run (the tables were current, nothing to check)."""
    if summary is None:
        return "failed"
    if summary.quality.startswith(_GATE_PASSED_PREFIX):
        return "passed"
    if summary.quality.startswith(_GATE_SKIPPED_PREFIX):
        return "skipped"
    return "not_run"


def _document(timestamp_ms: int, dimensions: List[str], metrics: dict, properties: dict) -> str:
    """One EMF object: a metric directive naming `metrics` (name -> (value, unit)) under `dimensions`,
    whose values sit beside it as top-level members."""
    directive = {
        "Namespace": NAMESPACE,
        "Dimensions": [dimensions],
        "Metrics": [{"Name": name, "Unit": unit} for name, (_value, unit) in metrics.items()],
    }
    body = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]}, "Pipeline": PIPELINE}
    body.update(properties)
    body.update({name: value for name, (value, _unit) in metrics.items()})
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def emf_lines(summary, timestamp_ms: int) -> List[str]:
    """The run's metrics: one line for the run (SuccessfulRuns, FailedRuns, QualityGateFailed, EventsRead,
    Duplicates, Quarantined, Seconds) and one per table (Rows, with a Table dimension). `summary` is the
    pipeline's RunSummary, or None when the quality gate stopped the run (then only the verdict is known)."""
    verdict = gate_verdict(summary)
    succeeded = summary is not None and (summary.published or summary.mode == "up-to-date")
    run_metrics = {
        SUCCESSFUL_RUNS: (1 if succeeded else 0, "Count"),
        "FailedRuns": (0 if succeeded else 1, "Count"),
        "QualityGateFailed": (1 if verdict == "failed" else 0, "Count"),
    }
    properties = {"GateVerdict": verdict}
    if summary is not None:
        run_metrics.update({
            "EventsRead": (summary.events_read, "Count"),
            "Duplicates": (summary.duplicates, "Count"),
            "Quarantined": (summary.quarantined, "Count"),
            "Seconds": (round(sum(summary.stage_seconds.values()), 3), "Seconds"),
        })
        properties.update({"RunId": summary.run_id, "Mode": summary.mode})
    lines = [_document(timestamp_ms, ["Pipeline"], run_metrics, properties)]
    if summary is not None:
        for table, rows in summary.rows.items():
            lines.append(_document(timestamp_ms, ["Pipeline", "Table"], {"Rows": (rows, "Count")},
                                   {"Table": table, "RunId": summary.run_id}))
    return lines
