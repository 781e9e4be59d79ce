"""Great Expectations set up for the gate: offline, in memory, quiet, and one Spark job per metric bundle.

GX computes a frame's aggregate metrics in bundles, but runs one Spark query per *domain* of a bundle,
and every column check that ignores nulls has its own domain (the frame filtered to that column's
non-null rows): a frame with ten range checks costs ten queries, each a scan of the frame. The data
source here uses an engine that computes every domain of a bundle in one query: each domain's
aggregates are one row, and the rows are joined side by side into one result. The expectations, the
metrics and their values are GX's own; only how many times Spark is asked changes.
"""
from __future__ import annotations

import functools
import logging
import os
from functools import reduce
from typing import Literal  # resolved from this module's globals by GX's (pydantic) data source model


def import_gx():
    # Read by GX when it decides whether to send usage events; must be set before the import.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return gx


def import_in_background() -> None:
    """Start importing GX (about 3 s of Python) on a thread while Spark works: the driver's Python is idle
    then, and the gate's own import waits for this one (Python's import lock) instead of starting over."""
    import threading

    threading.Thread(target=gx_expectations, name="import-great-expectations", daemon=True).start()


def gx_expectations():
    import_gx()
    import great_expectations.expectations as gxe

    return gxe


def context(gx):
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def spark_source(gx_context, name: str):
    """A Spark data source (frames passed at run time) whose engine runs one query per metric bundle."""
    _register_source_type()
    return gx_context.data_sources.add_advising_spark(name, persist=False)


@functools.lru_cache(maxsize=None)
def _register_source_type() -> type:
    """Defines the data source type once: GX registers a fluent data source type when its class is made."""
    import_gx()
    from great_expectations.core.id_dict import IDDict
    from great_expectations.datasource.fluent import SparkDatasource
    from great_expectations.execution_engine import SparkDFExecutionEngine
    from great_expectations.util import convert_to_json_serializable

    class OneQueryEngine(SparkDFExecutionEngine):
        # The rows of the frame being validated, when the job that wrote it counted them (set by the runner).
        counted_rows = None

        def resolve_metrics(self, metrics_to_resolve, metrics=None, runtime_configuration=None):
            # With no example values asked for (the verdict pass), GX still "fetches" them: a query with
            # LIMIT 0 per row-by-row check, planned and collected one at a time (about 60 round trips per
            # run). Their value is known without Spark: none.
            metrics_to_resolve = list(metrics_to_resolve)
            known = {m.id: [] for m in metrics_to_resolve if _asks_for_no_values(m)}
            # GX counts a frame's rows in a query of its own, before every other metric (they wait for it):
            # a scan of the frame that a counted write already did.
            if self.counted_rows is not None:
                known.update({m.id: self.counted_rows for m in metrics_to_resolve if _whole_row_count(m)})
            rest = [m for m in metrics_to_resolve if m.id not in known]
            resolved = super().resolve_metrics(rest, metrics, runtime_configuration) if rest else {}
            return {**resolved, **known}

        def _process_direct_and_bundled_metric_computation_configurations(
            self, metric_fn_direct_configurations, metric_fn_bundle_configurations
        ):
            # GX counts each column-pair and compound-uniqueness check's rows with a query of its own
            # (`count()`, twice per check); those counts join one query here, as the bundles do.
            counts = [(c, _row_count(c)) for c in metric_fn_direct_configurations]
            direct = [c for c, count in counts if count is None]
            counts = [(c, count) for c, count in counts if count is not None]
            try:
                counted = _count_together(self, counts) if counts else {}
            except Exception:  # GX's own path then, with its own error reporting per metric
                counted, direct = {}, metric_fn_direct_configurations
            if self._caching:
                self._metric_cache.update(counted)
            resolved = super()._process_direct_and_bundled_metric_computation_configurations(direct, metric_fn_bundle_configurations)
            return {**resolved, **counted}

        def resolve_metric_bundle(self, metric_fn_bundle):
            domains = {}  # domain id -> (domain kwargs, aggregate columns, metric ids)
            for bundled in metric_fn_bundle:
                kwargs = bundled.compute_domain_kwargs or {}
                kwargs = kwargs if isinstance(kwargs, IDDict) else IDDict(kwargs)
                entry = domains.setdefault(kwargs.to_id(), (kwargs, [], []))
                entry[1].append(bundled.metric_fn)
                entry[2].append(bundled.metric_configuration.id)
            if not domains:
                return {}
            rows = [self.get_domain_records(domain_kwargs=kwargs).agg(*columns) for kwargs, columns, _ in domains.values()]
            # A cartesian product of one-row results: no broadcast (which would be a job of its own).
            (result,) = reduce(lambda left, right: left.hint("shuffle_replicate_nl").crossJoin(right), rows).collect()
            values = iter(result)
            return {
                metric_id: convert_to_json_serializable(data=next(values))
                for _, _, metric_ids in domains.values()
                for metric_id in metric_ids
            }

    class AdvisingSparkDatasource(SparkDatasource):
        type: Literal["advising_spark"] = "advising_spark"

        @property
        def execution_engine_type(self):
            return OneQueryEngine

    return AdvisingSparkDatasource


# GX's metric functions that answer with a `count()` of their own: of the rows where the check's condition
# holds (True), or of all the check's rows (False).
_COUNTING = {
    "_spark_map_condition_unexpected_count_value": True,
    "_spark_column_pair_map_condition_filtered_row_count": False,
    "_spark_multicolumn_map_condition_filtered_row_count": False,
}


def _row_count(configuration):
    """(domain kwargs, condition or None for every row) of a metric GX would count with a query of its own;
    None for any other metric. The domain is the one GX's function would count over."""
    from great_expectations.expectations.metrics.util import get_dbms_compatible_metric_domain_kwargs

    only_unexpected = _COUNTING.get(getattr(configuration.metric_fn, "__name__", ""))
    if only_unexpected is None:
        return None
    metrics = configuration.metric_provider_kwargs["metrics"]
    condition, compute_kwargs, accessor_kwargs = metrics["unexpected_condition"]
    if only_unexpected:
        return dict(**compute_kwargs, **accessor_kwargs), condition
    accessor_kwargs = get_dbms_compatible_metric_domain_kwargs(
        metric_domain_kwargs=accessor_kwargs, batch_columns_list=metrics["table.columns"]
    )
    return dict(**compute_kwargs, **accessor_kwargs), None


def _count_together(engine, counts) -> dict:
    """The row counts of (configuration, its _row_count) pairs, every domain's in one Spark query."""
    from great_expectations.core.id_dict import IDDict
    from pyspark.sql import functions as F

    domains = {}  # domain id -> (domain kwargs, [(metric id, condition)])
    for configuration, (kwargs, condition) in counts:
        domains.setdefault(IDDict(kwargs).to_id(), (kwargs, []))[1].append((configuration.metric_configuration.id, condition))
    rows = []
    for kwargs, wanted in domains.values():
        # A condition may hold a window function (compound uniqueness): a column first, then the counts.
        flags = engine.get_domain_records(domain_kwargs=kwargs).select(
            *[(F.lit(True) if condition is None else condition).alias(f"_{i}") for i, (_, condition) in enumerate(wanted)]
        )
        rows.append(flags.agg(*[F.count(F.when(F.col(f"_{i}") == True, 1)) for i in range(len(wanted))]))  # noqa: E712
    (result,) = reduce(lambda left, right: left.hint("shuffle_replicate_nl").crossJoin(right), rows).collect()
    values = iter(result)
    return {metric_id: next(values) for _, wanted in domains.values() for metric_id, _ in wanted}


def _whole_row_count(metric) -> bool:
    """GX's row count of the whole frame (no row condition or other narrowing of its domain)."""
    domain = metric.metric_domain_kwargs or {}
    return metric.metric_name == "table.row_count" and all(value is None for key, value in domain.items() if key != "batch_id")


def _asks_for_no_values(metric) -> bool:
    """A metric listing a check's offending values, limited to none (GX's `partial_unexpected_count` 0)."""
    result_format = (metric.metric_value_kwargs or {}).get("result_format") or {}
    return (
        metric.metric_name.endswith(".unexpected_values")
        and isinstance(result_format, dict)
        and result_format.get("result_format") != "COMPLETE"
        and result_format.get("partial_unexpected_count") == 0
    )
