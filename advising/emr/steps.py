"""The pipeline's Spark step: one definition, rendered for every way it runs.

`pipeline_steps()` is the only place that decides what runs for a date: the job arguments come from
`jobs.config.RunConfig.to_args()`, the code from an uploaded artifact version. The same `SparkStep`
renders as an EMR step (`advising emr submit --cluster-id`, the `--transient` run_job_flow request and
the Airflow DAG), as EMR Serverless `sparkSubmit` parameters, and as a local spark-submit command line
(the packaging test), so none of them can drift from the others.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

from jobs.config import RunConfig

COMMAND_RUNNER = "command-runner.jar"
STEP_PREFIX = "advising-pipeline"
# ActionOnFailure per step and target. On a cluster others share, a failed run must leave the cluster
# and everyone else's queued steps alone (CANCEL_AND_WAIT would cancel every pending step on it); on
# a transient cluster that exists for this run only, nothing else can run after a failure.
ACTION_ON_FAILURE = {
    "cluster": "CONTINUE",
    "transient": "TERMINATE_CLUSTER",
}
# A date no real run uses, substituted by a template (see `templated`).
_TEMPLATE_DATE = dt.date(1111, 11, 11)


@dataclass(frozen=True)
class Artifacts:
    """Where one artifact version lives: s3://bucket/prefix/version (or a local directory in tests)."""

    base: str

    def _at(self, name: str) -> str:
        return f"{self.base.rstrip('/')}/{name}"

    @property
    def jobs_zip(self) -> str:
        return self._at("jobs.zip")

    @property
    def main_py(self) -> str:
        return self._at("main.py")

    @property
    def requirements(self) -> str:
        return self._at("requirements.txt")

    @property
    def bootstrap_script(self) -> str:
        return self._at("install-requirements.sh")

    @property
    def manifest(self) -> str:
        return self._at("manifest.json")


def artifacts_for(root: str, version: str) -> Artifacts:
    return Artifacts(f"{root.rstrip('/')}/{version}")


@dataclass(frozen=True)
class SparkStep:
    """One spark-submit of the entry script, independent of where it runs."""

    name: str
    action_on_failure: str
    py_files: str
    entry_point: str
    arguments: tuple
    spark_conf: tuple = ()

    def submit_options(self) -> list:
        """spark-submit options shared by every target (deploy mode and master excluded)."""
        options = []
        for item in self.spark_conf:
            options += ["--conf", item]
        return options + ["--py-files", self.py_files]

    def emr_step(self) -> dict:
        """The AddJobFlowSteps / RunJobFlow `Steps` entry: cluster deploy mode, so the driver runs on YARN
        and a lost primary-node SSH session or Airflow worker cannot kill the run."""
        return {
            "Name": self.name,
            "ActionOnFailure": self.action_on_failure,
            "HadoopJarStep": {
                "Jar": COMMAND_RUNNER,
                "Args": ["spark-submit", "--deploy-mode", "cluster", *self.submit_options(), self.entry_point, *self.arguments],
            },
        }

    def serverless_job_driver(self, extra_conf: Sequence[str] = ()) -> dict:
        """The StartJobRun `jobDriver` for EMR Serverless (which has no bootstrap actions: `extra_conf`
        carries its Python environment settings)."""
        options = self.submit_options()
        for item in extra_conf:
            options += ["--conf", item]
        return {
            "sparkSubmit": {
                "entryPoint": self.entry_point,
                "entryPointArguments": list(self.arguments),
                "sparkSubmitParameters": " ".join(options),
            }
        }

    def local_argv(self, spark_submit: str, master: str) -> list:
        """A client-mode command line with the EMR step's own options and arguments."""
        return [spark_submit, "--master", master, *self.submit_options(), self.entry_point, *self.arguments]


def step_name(run_date: dt.date, full: bool = False) -> str:
    """The name carries the run's date: that is what makes a second submission recognisable."""
    return f"{STEP_PREFIX}-{run_date.isoformat()}" + ("-full" if full else "")


def pipeline_steps(
    config: RunConfig,
    artifacts: Artifacts,
    target: str,
    spark_conf: Sequence[str] = (),
) -> list:
    """The steps of one nightly run. `config.as_of` is the run date (ingest_date folders up to it)."""
    if config.as_of is None:
        raise ValueError("a scheduled run needs config.as_of: its run date")
    if target not in ACTION_ON_FAILURE:
        raise ValueError(f"unknown target {target!r}; expected one of {sorted(ACTION_ON_FAILURE)}")
    return [
        SparkStep(
            name=step_name(config.as_of, config.full),
            action_on_failure=ACTION_ON_FAILURE[target],
            py_files=artifacts.jobs_zip,
            entry_point=artifacts.main_py,
            arguments=tuple(config.to_args()),
            spark_conf=tuple(spark_conf),
        )
    ]


def run_steps(settings, version: str, run_date: dt.date, target: str, full: bool = False,
              skip_quality: bool = False) -> list:
    """The steps of the scheduled run for `run_date` with the given settings (advising.emr.settings)
    and artifact version: what the CLI submits and what the DAG renders for the same date."""
    config = RunConfig(
        input=settings.input_root,
        output=settings.output_root,
        timezone=settings.campus_timezone,
        as_of=run_date,
        full=full,
        skip_quality=skip_quality,
        catalog_database=settings.catalog_database or None,
        keep_versions=settings.keep_versions,
    )
    return pipeline_steps(config, artifacts_for(settings.artifact_root, version), target, settings.spark_conf)


def templated(build, template: str):
    """Call `build(run_date)` with a placeholder date and put `template` (e.g. Airflow's "{{ ds }}")
    wherever the date appears, so a scheduler renders exactly what `build(real_date)` returns."""
    placeholder = _TEMPLATE_DATE.isoformat()

    def swap(value):
        if isinstance(value, str):
            return value.replace(placeholder, template)
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(swap(v) for v in value)
        if isinstance(value, dict):
            return {swap(k): swap(v) for k, v in value.items()}
        return value

    return swap(build(_TEMPLATE_DATE))
