"""Running the suites: one stored GX validation per frame, then examples for the failed checks only."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional

from jobs.quality.gx import context, gx_expectations, import_gx, spark_source
from jobs.quality.report import ExpectationOutcome, GateReport, build_data_docs
from jobs.quality.suites import CRITICAL, EXAMPLES, FRAME_ORDER, SQL_ROWS, Check, WholeTables, suite_checks, whole_table_outcomes

# Pass 1 asks GX for verdicts and counts only: with no example values requested, every column check
# of a frame folds into one Spark aggregation. Examples are fetched afterwards for failures only.
_VERDICTS = {"result_format": "BASIC", "partial_unexpected_count": 0}
_EXAMPLES = {"result_format": "BASIC", "partial_unexpected_count": EXAMPLES}
_NAME_KEY = "gate_name"
_ROW_COUNT = "row_count"


def run_gate(frames: Mapping[str, Any], previous_counts: Optional[Mapping[str, int]],
             whole: Optional[WholeTables] = None, counted: Optional[Mapping[str, int]] = None) -> GateReport:
    """Validate every frame present with its suite; passed only if no critical expectation failed.
    `whole` (a nightly run, whose frames hold only the recomputed partitions) moves the row-count checks
    to the whole tables' counts and adds the whole-table uniqueness of appointment_id. `counted` holds the
    rows of frames the job that read or wrote them counted: GX takes those instead of counting again."""
    started = time.perf_counter()
    gx = import_gx()
    gx_context = context(gx)
    source = spark_source(gx_context, "staged")
    engine = source.get_execution_engine()
    outcomes: List[ExpectationOutcome] = []
    row_counts: Dict[str, int] = dict(whole.rows) if whole is not None else {}
    for frame in FRAME_ORDER:
        if frame not in frames:
            continue
        checks = suite_checks(frame, previous_counts if whole is None else None, row_counts)
        engine.counted_rows = (counted or {}).get(frame)
        try:
            frame_outcomes, count = _validate_frame(frame, frames[frame], *_prepare(gx, gx_context, source, frame, checks))
        finally:
            engine.counted_rows = None
        outcomes += frame_outcomes
        if count is not None and whole is None:
            row_counts[frame] = count
    if whole is not None:
        outcomes += [ExpectationOutcome(*outcome) for outcome in whole_table_outcomes(whole, previous_counts)]
    return GateReport(
        passed=not any(not o.success and o.severity == CRITICAL for o in outcomes),
        results=outcomes,
        seconds=time.perf_counter() - started,
        row_counts=row_counts,
        _build_docs=lambda target: build_data_docs(gx_context, target),
    )


def _prepare(gx, context, source, frame: str, checks: List[Check]):
    """The frame's suite, batch definition and stored validation definition."""
    gxe = gx_expectations()
    suite = gx.ExpectationSuite(name=frame)
    for check in checks:
        suite.add_expectation(_configured(check.expectation, check.name, check.severity, f"{check.name}: {check.rule}"))
    # The row count is always reported; GX computes it in the same aggregation as the column checks.
    suite.add_expectation(_configured(gxe.ExpectTableRowCountToBeBetween(min_value=0), _ROW_COUNT, "info", "row count"))
    suite = context.suites.add(suite)
    batch_definition = source.add_dataframe_asset(frame).add_batch_definition_whole_dataframe("staged")
    validation = context.validation_definitions.add(gx.ValidationDefinition(name=frame, data=batch_definition, suite=suite))
    return checks, validation, batch_definition


def _validate_frame(frame: str, df, checks: List[Check], validation, batch_definition):
    """One GX validation (one suite) of one frame, then examples for the failed checks."""
    result = validation.run(batch_parameters={"dataframe": df}, result_format=_VERDICTS)
    by_name = {(item.expectation_config.meta or {}).get(_NAME_KEY): item for item in result.results}
    count = (by_name[_ROW_COUNT].result or {}).get("observed_value")
    outcomes = [_outcome(frame, check, by_name[check.name], count) for check in checks]
    failed = [
        (check, outcome)
        for check, outcome in zip(checks, outcomes)
        if not outcome.success and not _raised(by_name[check.name])
    ]
    if any(check.example_source is not None for check, _ in failed):
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        for check, outcome in failed:
            _add_examples(batch, check, outcome)
    return outcomes, count


def _configured(expectation, name: str, severity: str, description: str):
    """A copy of the expectation carrying the gate's name and severity (the suite owns its copy)."""
    configured = expectation.copy(deep=True)
    configured.meta = {**(configured.meta or {}), _NAME_KEY: name}
    configured.severity = severity
    configured.description = description
    return configured


def _raised(item) -> Optional[str]:
    """The first line of the error GX caught while evaluating an expectation, if any. GX reports it
    flat, or per metric (a dict of such dicts) when a metric could not be computed."""
    info = item.exception_info or {}
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)] if isinstance(info, dict) else []
    for candidate in candidates:
        if candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "unknown error").strip().splitlines()[0]
    return None


def _outcome(frame: str, check: Check, item, row_count: Optional[int]) -> ExpectationOutcome:
    error = _raised(item)
    if error:
        return ExpectationOutcome(frame, check.name, check.severity, False, f"could not be evaluated ({error}); expected {check.rule}")
    if row_count == 0 and check.passes_when_empty:
        return ExpectationOutcome(frame, check.name, check.severity, True, "no rows")
    result = item.result or {}
    if "unexpected_count" in result:
        observed = _unexpected(result)
    elif check.observed is not None:
        observed = check.observed(result.get("observed_value"))
    else:  # a SQL check: GX reports how many rows the query returned
        observed = f"{result.get('observed_value')} rows unexpected"
    success = bool(item.success)
    return ExpectationOutcome(frame, check.name, check.severity, success, _details(observed, check, success))


def _unexpected(result: dict) -> str:
    return f"{result.get('unexpected_count') or 0} of {result.get('element_count') or 0} rows unexpected"


def _details(observed: str, check: Check, success: bool) -> str:
    return observed if success else f"{observed}; expected {check.rule}"


def _add_examples(batch, check: Check, outcome: ExpectationOutcome) -> None:
    """Fills in a few offending values (or rows, for SQL checks) of a failed check, and its exact
    count where the verdict came from a table-level metric."""
    if check.example_source is None:
        return
    if check.example_source is SQL_ROWS:
        # Only GX's COMPLETE format returns a query's rows; SQL checks cover the small aggregates.
        result = batch.validate(check.expectation, result_format="COMPLETE").result or {}
        outcome.examples = list(((result.get("details") or {}).get("unexpected_rows") or [])[:EXAMPLES])
        return
    result = batch.validate(check.example_source, result_format=_EXAMPLES).result or {}
    outcome.examples = list(result.get("partial_unexpected_list") or [])[:EXAMPLES]
    if "unexpected_count" in result and check.example_source is not check.expectation:
        # The verdict came from a table-level share: the row-by-row count is the clearer figure.
        outcome.details = _details(_unexpected(result), check, False)
