"""The one step definition, rendered for EMR, EMR Serverless, a local spark-submit and a scheduler template."""
from __future__ import annotations

import datetime as dt

import pytest

from advising.emr.launch import job_flow_request, serverless_request
from advising.emr.settings import load_settings
from advising.emr.steps import artifacts_for, pipeline_steps, run_steps, templated
from jobs.config import RunConfig

DAY = dt.date(2025, 3, 1)


def settings(**overrides):
    return load_settings(env={}, overrides=[f"{k}={v}" for k, v in overrides.items()])


def test_emr_step_is_spark_submit_of_the_run_config():
    s = settings(campus_timezone="America/Chicago")
    [step] = run_steps(s, "0.1.0-abc", DAY, "cluster", full=True)
    base = "s3://advising-emr-artifacts/advising/0.1.0-abc"
    config = RunConfig(s.input_root, s.output_root, "America/Chicago", as_of=DAY, full=True, catalog_database="advising")
    assert step.emr_step() == {
        "Name": "advising-pipeline-2025-03-01-full",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": ["spark-submit", "--deploy-mode", "cluster", "--conf", "spark.yarn.maxAppAttempts=1",
                     "--py-files", f"{base}/jobs.zip", f"{base}/main.py", *config.to_args()],
        },
    }
    assert RunConfig.from_args(step.arguments, env={}) == config


def test_action_on_failure_depends_on_the_target():
    s = settings()
    assert run_steps(s, "v", DAY, "cluster")[0].action_on_failure == "CONTINUE"
    assert run_steps(s, "v", DAY, "transient")[0].action_on_failure == "TERMINATE_CLUSTER"
    with pytest.raises(ValueError):
        run_steps(s, "v", DAY, "somewhere")
    with pytest.raises(ValueError):
        pipeline_steps(RunConfig("in", "out"), artifacts_for("s3://b/p", "v"), "cluster")


def test_serverless_rendering_shares_the_emr_step_options_and_arguments():
    [step] = run_steps(settings(), "v", DAY, "transient")
    emr_args = step.emr_step()["HadoopJarStep"]["Args"]
    driver = step.serverless_job_driver()["sparkSubmit"]
    assert driver["entryPoint"] == step.entry_point
    assert driver["entryPointArguments"] == emr_args[emr_args.index(step.entry_point) + 1:]
    assert driver["sparkSubmitParameters"].split() == emr_args[3:emr_args.index(step.entry_point)]


def test_serverless_request_carries_python_environment_and_a_stable_token():
    s = settings(serverless_python_archive="s3://b/venv.tar.gz")
    [step] = run_steps(s, "v", DAY, "transient")
    first = serverless_request(s, "app", step, "arn:aws:iam::1:role/r")
    params = first["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]
    assert "--conf spark.archives=s3://b/venv.tar.gz#environment" in params
    assert "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python" in params
    assert serverless_request(s, "app", step, "arn:aws:iam::1:role/r")["clientToken"] == first["clientToken"]
    [other_day] = run_steps(s, "v", DAY + dt.timedelta(days=1), "transient")
    assert serverless_request(s, "app", other_day, "arn:aws:iam::1:role/r")["clientToken"] != first["clientToken"]


def test_templated_renders_back_to_the_real_date():
    s = settings()
    build = lambda day: [x.emr_step() for x in run_steps(s, "v", day, "transient")]  # noqa: E731
    template = templated(build, "{{ ds }}")
    assert "{{ ds }}" in template[0]["Name"] and "{{ ds }}" in template[0]["HadoopJarStep"]["Args"]
    rendered = [{**t, "Name": t["Name"].replace("{{ ds }}", "2025-03-01"),
                 "HadoopJarStep": {**t["HadoopJarStep"],
                                   "Args": [a.replace("{{ ds }}", "2025-03-01") for a in t["HadoopJarStep"]["Args"]]}}
                for t in template]
    assert rendered == build(DAY)


def test_job_flow_request_capacity_rules():
    s = settings(core_on_demand_units=1, core_spot_units=3, max_units=8, max_on_demand_units=2, subnet_ids="subnet-a,subnet-b")
    steps = run_steps(s, "v", DAY, "transient")
    request = job_flow_request(s, artifacts_for(s.artifact_root, "v"), "n", steps, keep_alive=False, tags={"k": "v"})
    core = request["Instances"]["InstanceFleets"][1]
    assert (core["TargetOnDemandCapacity"], core["TargetSpotCapacity"]) == (1, 3)
    assert core["LaunchSpecifications"]["SpotSpecification"]["TimeoutAction"] == "SWITCH_TO_ON_DEMAND"
    assert request["ManagedScalingPolicy"]["ComputeLimits"] == {
        "UnitType": "InstanceFleetUnits", "MinimumCapacityUnits": 4, "MaximumCapacityUnits": 8,
        "MaximumOnDemandCapacityUnits": 2,
    }
    assert request["Instances"]["Ec2SubnetIds"] == ["subnet-a", "subnet-b"]
    assert request["Steps"] == [steps[0].emr_step()]
    from common.errors import UsageError

    with pytest.raises(UsageError, match="max_units"):
        job_flow_request(settings(max_units=2, core_spot_units=2), artifacts_for("s3://b/p", "v"), "n", [], False, {})
