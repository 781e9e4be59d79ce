"""Airflow DAG: the nightly EMR run of the appointment pipeline.

create_cluster -> add_steps -> watch_step_0 -> pipeline_succeeded
                                          \\-> terminate_cluster (all_done: runs whatever happened)

Daily at campus midnight (`campus_timezone`) over the day that just ended; `{{ ds }}` is the UTC date
of that day's start, which is always the newest ingest_date folder (UTC) that is complete when the run
starts. The steps come from advising.emr.steps, the same function `advising emr submit` uses, and
the cluster request from advising.emr.launch, so the DAG and the CLI cannot drift apart.

A failed run (any task: cluster, step, sensor timeout) puts one EventBridge event (source
`advising.pipeline`, detail-type `Advising DAG Run Failed`); infra/emr.yaml routes it to the alerts topic.

Parsing reads only the settings (ADVISING_EMR_* environment / config file, advising.emr.settings) and
this checkout's artifact version: no Airflow Variable, Connection or AWS call happens at parse time.
Set ADVISING_EMR_ARTIFACT_VERSION where the DAG folder is not a git checkout.
"""
from __future__ import annotations

import json

import pendulum
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronDataIntervalTimetable

from advising.emr.launch import job_flow_request
from advising.emr.package import resolve_version
from advising.emr.settings import EmrSettings, load_settings
from advising.emr.steps import artifacts_for, run_steps, step_name, templated
from jobs.config import parse_date

DAG_ID = "advising_pipeline"
# The DagFailedRule of infra/emr.yaml matches exactly these.
FAILURE_SOURCE = "advising.pipeline"
FAILURE_DETAIL_TYPE = "Advising DAG Run Failed"
RUN_DATE = "{{ ds }}"
CLUSTER_ID = "{{ ti.xcom_pull(task_ids='create_cluster') }}"


def dag_steps(settings: EmrSettings, version: str) -> list:
    """The EMR steps with the run date left as the `{{ ds }}` template."""
    return templated(lambda day: [s.emr_step() for s in run_steps(settings, version, day, "transient")], RUN_DATE)


def cluster_request(settings: EmrSettings, version: str) -> dict:
    """RunJobFlow without steps: they are added by add_steps, so a retry of that task alone is possible.
    The cluster stays up between steps; terminate_cluster (and auto-termination when idle) end it."""
    artifacts = artifacts_for(settings.artifact_root, version)
    return templated(
        lambda day: job_flow_request(
            settings, artifacts, step_name(day), [], keep_alive=True,
            tags={"project": "advising-analytics", "run-date": day.isoformat(), "artifact-version": version,
                  "scheduler": "airflow"},
        ),
        RUN_DATE,
    )


def failure_event(context) -> dict:
    """The PutEvents entry for a failed DAG run, from the callback's context."""
    dag_run = context["dag_run"]
    detail = {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "logical_date": dag_run.logical_date.isoformat() if dag_run.logical_date else None,
        "reason": str(context.get("reason") or "a task failed"),
    }
    return {"Source": FAILURE_SOURCE, "DetailType": FAILURE_DETAIL_TYPE, "Detail": json.dumps(detail, sort_keys=True)}


def failure_notifier(settings: EmrSettings):
    """The DAG's on_failure_callback: one event on the default bus, with the DAG's AWS connection."""
    def notify(context) -> None:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        events = AwsBaseHook(aws_conn_id=settings.aws_conn_id, client_type="events", region_name=settings.region).get_conn()
        response = events.put_events(Entries=[failure_event(context)])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the failure event: {response['Entries']}")

    return notify


def build_dag(settings: EmrSettings, version: str) -> DAG:
    tz = pendulum.timezone(settings.campus_timezone)
    start = parse_date(settings.dag_start_date, "dag_start_date")
    aws = {"aws_conn_id": settings.aws_conn_id, "region_name": settings.region}
    with DAG(
        dag_id=DAG_ID,
        description="Nightly compaction and aggregates of the appointment change log on a transient EMR cluster",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone=tz),
        start_date=pendulum.datetime(start.year, start.month, start.day, tz=tz),
        catchup=settings.dag_catchup,
        # Runs publish the same tables: two at once would race, so backfills run one date after another.
        max_active_runs=1,
        default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=5)},
        on_failure_callback=failure_notifier(settings),
        tags=["advising", "emr"],
    ) as dag:
        create = EmrCreateJobFlowOperator(
            task_id="create_cluster",
            job_flow_overrides=cluster_request(settings, version),
            emr_conn_id=None,
            **aws,
        )
        steps = dag_steps(settings, version)
        add = EmrAddStepsOperator(task_id="add_steps", job_flow_id=CLUSTER_ID, steps=steps, **aws)
        watches = [
            EmrStepSensor(
                task_id=f"watch_step_{i}",
                job_flow_id=CLUSTER_ID,
                step_id="{{ ti.xcom_pull(task_ids='add_steps')[%d] }}" % i,
                poke_interval=60,
                max_attempts=6 * 60,
                mode="reschedule",
                timeout=6 * 3600,
                **aws,
            )
            for i in range(len(steps))
        ]
        terminate = EmrTerminateJobFlowOperator(
            task_id="terminate_cluster", job_flow_id=CLUSTER_ID, trigger_rule="all_done", **aws
        )
        # terminate_cluster succeeds even after a failed step; this leaf carries the run's real outcome.
        succeeded = EmptyOperator(task_id="pipeline_succeeded")
        previous = add
        create >> add
        for watch in watches:
            previous >> watch
            previous = watch
        previous >> [terminate, succeeded]
    return dag


dag = build_dag(settings := load_settings(), resolve_version(settings))
