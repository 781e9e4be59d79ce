"""Running the suites: one stored GX validation per frame, then examples for the failed checks only."""
from __future__ import annotations

import time
from typing import Dict, List, Mapping, Optional

from jobs.quality.gx import context, gx_expectations, import_gx, spark_source
from jobs.quality.report import ExpectationOutcome, GateReport, build_data_docs
from jobs.quality.suites import CRITICAL, EXAMPLES, FRAME_ORDER, SQL_ROWS, Check, WholeTables, suite_checks, whole_table_outcomes

# Pass 1 asks GX for verdicts and counts only: with no example values requested, every column check
# of a frame folds into one Spark aggregation. Examples are fetched afterwards for failures only.
_VERDICTS = {"result_format": "BASIC", "partial_unexpected_count": 0}
_EXAMPLES = {"result_format": "BASIC", "partial_unexpected_count": EXAMPLES}
_NAME_KEY = "gate_name"
_ROW_COUNT = "row_count"


class Gate:
    """One run's gate, frame by frame: `check` validates one frame with its suite (a run checks each as soon as
    it has made it; the snapshot before the quarantine, whose suite compares their row counts), `report` gives
    the verdict: passed only if no critical expectation failed. The report lists the frames in FRAME_ORDER.

    `previous_counts` are the last publish's row counts. A `nightly` run's frames hold only the recomputed
    partitions: its row-count checks move to the whole tables' counts (`report(whole)`), which also adds the
    whole-table uniqueness of appointment_id. One thread at a time: GX's objects are not shared between threads."""

    def __init__(self, previous_counts: Optional[Mapping[str, int]], nightly: bool = False):
        self._started = time.perf_counter()
        self._previous, self._nightly = previous_counts, nightly
        self._gx = import_gx()
        self._context = context(self._gx)
        self._source = spark_source(self._context, "staged")
        self._outcomes: List[ExpectationOutcome] = []
        self._row_counts: Dict[str, int] = {}

    def check(self, frame: str, df, counted_rows: Optional[int] = None) -> None:
        """Validate `frame`. `counted_rows`: its rows, when the job that read or wrote it counted them (GX takes
        those instead of counting again)."""
        checks = suite_checks(frame, None if self._nightly else self._previous, self._row_counts)
        engine = self._source.get_execution_engine()
        engine.counted_rows = counted_rows
        try:
            outcomes, count = _validate_frame(frame, df, *_prepare(self._gx, self._context, self._source, frame, checks))
        finally:
            engine.counted_rows = None
        self._outcomes += outcomes
        if count is not None and not self._nightly:
            self._row_counts[frame] = count

    def report(self, whole: Optional[WholeTables] = None) -> GateReport:
        """The verdict over every frame checked (and, for a nightly run, the whole tables' figures)."""
        outcomes = sorted(self._outcomes, key=lambda outcome: FRAME_ORDER.index(outcome.frame))
        row_counts = dict(self._row_counts)
        if self._nightly:
            outcomes += [ExpectationOutcome(*outcome) for outcome in whole_table_outcomes(whole, self._previous)]
            row_counts = dict(whole.rows)
        gx_context = self._context
        return GateReport(
            passed=not any(not o.success and o.severity == CRITICAL for o in outcomes),
            results=outcomes,
            seconds=time.perf_counter() - self._started,
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
