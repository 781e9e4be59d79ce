"""The requests that launch a run somewhere other than a running cluster: RunJobFlow for a transient
EMR cluster (CLI `--transient` and the Airflow DAG) and StartJobRun for EMR Serverless.

Pure functions of the settings and the steps (advising.emr.steps): no AWS call here, so `--dry-run`
prints exactly what would be sent.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from advising.bundle import BOOTSTRAP_DIR
from advising.emr.steps import Artifacts
from common.errors import UsageError

CLUSTER_CONFIGURATION = BOOTSTRAP_DIR / "cluster-configuration.json"
SERVERLESS_ROLE_NAME = "advising-emr-serverless-job"


def cluster_configuration(path: Path = CLUSTER_CONFIGURATION) -> list:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the cluster configuration {path}: {exc}") from None


def _check_capacity(settings) -> None:
    core = settings.core_on_demand_units + settings.core_spot_units
    if settings.core_on_demand_units < 1:
        raise UsageError("EMR setting core_on_demand_units must be at least 1 (the on-demand floor of the core fleet)")
    if not settings.core_on_demand_units <= settings.max_on_demand_units <= settings.max_units or settings.max_units < core:
        raise UsageError(
            "EMR capacity settings must satisfy core_on_demand_units <= max_on_demand_units <= max_units "
            "and core_on_demand_units + core_spot_units <= max_units"
        )
    if not 60 <= settings.idle_timeout_seconds <= 604800:
        raise UsageError("EMR setting idle_timeout_seconds must be between 60 and 604800")
    if not settings.primary_instance_types or not settings.core_instance_types:
        raise UsageError("EMR settings primary_instance_types and core_instance_types must not be empty")


def job_flow_request(settings, artifacts: Artifacts, name: str, steps, keep_alive: bool, tags: dict) -> dict:
    """RunJobFlow: Spark on instance fleets (core capacity on spot with an on-demand floor and a switch to
    on-demand when spot is not granted in time), managed scaling, auto-termination when idle, the
    bootstrap action that installs the pinned requirements, the cluster configuration, and the security
    configuration (local-disk and in-transit encryption, infra/emr.yaml)."""
    _check_capacity(settings)
    instances = {
        "InstanceFleets": [
            {
                "Name": "primary",
                "InstanceFleetType": "MASTER",
                "TargetOnDemandCapacity": 1,
                "InstanceTypeConfigs": [{"InstanceType": t, "WeightedCapacity": 1} for t in settings.primary_instance_types],
            },
            {
                "Name": "core",
                "InstanceFleetType": "CORE",
                "TargetOnDemandCapacity": settings.core_on_demand_units,
                "TargetSpotCapacity": settings.core_spot_units,
                "InstanceTypeConfigs": [{"InstanceType": t, "WeightedCapacity": 1} for t in settings.core_instance_types],
                "LaunchSpecifications": {
                    "SpotSpecification": {
                        "TimeoutDurationMinutes": settings.spot_timeout_minutes,
                        "TimeoutAction": "SWITCH_TO_ON_DEMAND",
                        "AllocationStrategy": "price-capacity-optimized",
                    },
                    "OnDemandSpecification": {"AllocationStrategy": "lowest-price"},
                },
            },
        ],
        "KeepJobFlowAliveWhenNoSteps": keep_alive,
        "TerminationProtected": False,
    }
    if settings.subnet_ids:
        instances["Ec2SubnetIds"] = list(settings.subnet_ids)
    return {
        "Name": name,
        "LogUri": settings.log_uri,
        "ReleaseLabel": settings.release_label,
        "Applications": [{"Name": "Spark"}],
        "Configurations": cluster_configuration(),
        "BootstrapActions": [
            {
                "Name": "install-requirements",
                "ScriptBootstrapAction": {"Path": artifacts.bootstrap_script, "Args": [artifacts.requirements]},
            }
        ],
        "Instances": instances,
        "Steps": [step.emr_step() for step in steps],
        "StepConcurrencyLevel": 1,
        "ManagedScalingPolicy": {
            "ComputeLimits": {
                "UnitType": "InstanceFleetUnits",
                "MinimumCapacityUnits": settings.core_on_demand_units + settings.core_spot_units,
                "MaximumCapacityUnits": settings.max_units,
                "MaximumOnDemandCapacityUnits": settings.max_on_demand_units,
            }
        },
        "AutoTerminationPolicy": {"IdleTimeout": settings.idle_timeout_seconds},
        "ScaleDownBehavior": "TERMINATE_AT_TASK_COMPLETION",
        "JobFlowRole": settings.instance_profile,
        "ServiceRole": settings.service_role,
        "SecurityConfiguration": settings.security_configuration,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }


def serverless_python_conf(settings) -> list:
    """EMR Serverless has no bootstrap actions: the pinned requirements travel as a packed virtualenv
    (docs/emr.md says how to build it) that the driver and executors unpack as ./environment."""
    if not settings.serverless_python_archive:
        return []
    python = "./environment/bin/python"
    return [
        f"spark.archives={settings.serverless_python_archive}#environment",
        f"spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={python}",
        f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={python}",
        f"spark.executorEnv.PYSPARK_PYTHON={python}",
    ]


def serverless_request(settings, application_id: str, step, role_arn: str) -> dict:
    """StartJobRun for the same step. The client token is derived from the request, so EMR Serverless
    itself answers a repeated identical submission with the existing job run."""
    request = {
        "applicationId": application_id,
        "executionRoleArn": role_arn,
        "name": step.name,
        "jobDriver": step.serverless_job_driver(serverless_python_conf(settings)),
        "configurationOverrides": {
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": settings.log_uri},
                # The driver's stdout carries the run's EMF metric lines (jobs/metrics.py).
                "cloudWatchLoggingConfiguration": {
                    "enabled": True,
                    "logGroupName": settings.serverless_log_group,
                    "logTypes": {"SPARK_DRIVER": ["STDOUT", "STDERR"]},
                },
            }
        },
        "tags": {"project": "advising-analytics"},
    }
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    return {**request, "clientToken": digest[:64]}


def serverless_role_arn(settings, account_id: str) -> str:
    return settings.serverless_execution_role_arn or f"arn:aws:iam::{account_id}:role/{SERVERLESS_ROLE_NAME}"
