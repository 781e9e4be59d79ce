"""The Airflow DAG: loads offline, has the expected shape, renders {{ ds }} into exactly the CLI's steps."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pendulum
import pytest

from advising.cli import main

DAGS = Path(__file__).resolve().parents[2] / "dags"
VERSION = "0.1.0-test"
DATE = "2025-03-01"


def dag_module():
    """The DAG file as a module, loaded by path as Airflow loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("advising_pipeline_dag", DAGS / "advising_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["advising_pipeline"]


@pytest.fixture
def dag(offline_env):
    offline_env.setenv("ADVISING_EMR_ARTIFACT_VERSION", VERSION)
    offline_env.setenv("ADVISING_EMR_CAMPUS_TIMEZONE", "America/Chicago")
    return load_dag()


def cli_request(capsys, *target):
    assert main(["emr", "submit", "--date", DATE, "--dry-run", *target]) == 0
    return json.loads(capsys.readouterr().out)["request"]


def test_dag_loads_offline_with_the_expected_tasks(dag):
    from airflow.providers.amazon.aws.operators.emr import (
        EmrAddStepsOperator,
        EmrCreateJobFlowOperator,
        EmrTerminateJobFlowOperator,
    )
    from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor

    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"create_cluster", "add_steps", "watch_step_0", "terminate_cluster", "pipeline_succeeded"}
    assert isinstance(tasks["create_cluster"], EmrCreateJobFlowOperator)
    assert isinstance(tasks["add_steps"], EmrAddStepsOperator)
    assert isinstance(tasks["watch_step_0"], EmrStepSensor)
    assert isinstance(tasks["terminate_cluster"], EmrTerminateJobFlowOperator)
    assert {k: sorted(t.upstream_task_ids) for k, t in tasks.items()} == {
        "create_cluster": [],
        "add_steps": ["create_cluster"],
        "watch_step_0": ["add_steps"],
        "terminate_cluster": ["watch_step_0"],
        "pipeline_succeeded": ["watch_step_0"],
    }
    assert tasks["terminate_cluster"].trigger_rule == "all_done"
    assert tasks["pipeline_succeeded"].trigger_rule == "all_success"
    assert tasks["create_cluster"].emr_conn_id is None  # no Connection lookup for the cluster definition
    assert dag.timezone.name == "America/Chicago"
    assert dag.timetable.expression == "0 0 * * *"
    assert dag.catchup is False and dag.max_active_runs == 1


def test_steps_render_ds_and_equal_the_cli_steps(dag, capsys, offline_env):
    add = dag.get_task("add_steps")
    rendered = add.render_template(add.steps, {"ds": DATE})
    assert rendered == cli_request(capsys, "--transient")["Steps"]
    args = rendered[0]["HadoopJarStep"]["Args"]
    assert args[args.index("--as-of") + 1] == DATE
    assert rendered[0]["Name"] == f"advising-pipeline-{DATE}"
    assert "/advising/0.1.0-test/jobs.zip" in " ".join(rendered[0]["HadoopJarStep"]["Args"])

    create = dag.get_task("create_cluster")
    cluster = create.render_template(create.job_flow_overrides, {"ds": DATE})
    transient = cli_request(capsys, "--transient")
    assert cluster["Steps"] == [] and cluster["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    assert {"Key": "run-date", "Value": DATE} in cluster["Tags"]
    assert cluster["SecurityConfiguration"] == "advising-emr-security"
    for key in ("Steps", "Tags", "Instances"):
        cluster.pop(key), transient.pop(key)
    assert cluster == transient

    watch = dag.get_task("watch_step_0")
    assert watch.step_id == "{{ ti.xcom_pull(task_ids='add_steps')[0] }}"
    assert watch.job_flow_id == dag.get_task("terminate_cluster").job_flow_id == add.job_flow_id


def test_catchup_comes_from_the_settings(offline_env):
    offline_env.setenv("ADVISING_EMR_ARTIFACT_VERSION", VERSION)
    offline_env.setenv("ADVISING_EMR_DAG_CATCHUP", "true")
    offline_env.setenv("ADVISING_EMR_DAG_START_DATE", "2024-09-01")
    dag = load_dag()
    assert dag.catchup is True
    assert dag.start_date == pendulum.datetime(2024, 9, 1, tz="UTC")


def test_without_an_artifact_version_the_checkout_commit_is_used(offline_env):
    from advising.emr.package import artifact_version

    args = load_dag().get_task("add_steps").steps[0]["HadoopJarStep"]["Args"]
    assert f"/advising/{artifact_version()}/main.py" in " ".join(args)


@pytest.mark.parametrize("campus", ["America/Chicago", "Asia/Tokyo", "UTC"])
def test_a_date_range_runs_every_complete_utc_day_once(campus, offline_env):
    """What a backfill of March 2025 (DST change included) schedules: one run per ds, in order, each
    starting after its whole UTC ingest day has ended."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable

    from advising.emr.settings import load_settings

    dag = dag_module().build_dag(load_settings(env={}, overrides=[f"campus_timezone={campus}"]), VERSION)
    timetable = CronDataIntervalTimetable(dag.timetable.expression, dag.timezone)
    start, end = pendulum.datetime(2025, 3, 1, tz=campus), pendulum.datetime(2025, 4, 1, tz=campus)
    restriction = TimeRestriction(earliest=start, latest=end, catchup=True)
    days, last = [], None
    while (info := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        ds = info.logical_date.in_timezone("UTC").date()  # the metadata database stores UTC: so does ds
        assert info.run_after >= pendulum.datetime(ds.year, ds.month, ds.day, tz="UTC").add(days=1)
        days.append(ds)
        last = info.data_interval
    assert len(days) == 32
    assert all(b - a == dt.timedelta(days=1) for a, b in zip(days, days[1:]))
