"""EMR delivery settings: where artifacts live, what cluster to start, where the data is.

One typed object (`EmrSettings`) read by `advising emr package|submit` and by the Airflow DAG.
Sources, later ones winning: the documented defaults below, a TOML config file (`--config PATH`,
else `$ADVISING_EMR_CONFIG`, else `~/.config/advising/emr.toml` when it exists), environment
variables `ADVISING_EMR_<FIELD>` (upper-case field name), then `--set field=value` flags.
Reading settings never touches AWS, so `--dry-run` and DAG parsing work without credentials.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from jobs.config import DEFAULT_KEEP_VERSIONS, check_catalog_database, check_keep_versions, check_timezone, parse_date
from common.errors import UsageError

CONFIG_ENV = "ADVISING_EMR_CONFIG"
DEFAULT_CONFIG_PATH = Path("~/.config/advising/emr.toml")
ENV_PREFIX = "ADVISING_EMR_"


@dataclass(frozen=True)
class EmrSettings:
    """Everything the EMR delivery needs besides the run date. Defaults match infra/emr.yaml's outputs
    for a stack named `advising-emr` in the default region; override them for a real account."""

    # Artifacts: s3://{bucket}/{prefix}/{version}/...
    bucket: str = "advising-emr-artifacts"
    prefix: str = "advising"
    # Empty: package version + git commit of this checkout (see advising.emr.package.artifact_version).
    artifact_version: str = ""
    region: str = "us-east-1"
    # Data: the job reads {input_root}/appointments/... and publishes under {output_root}.
    input_root: str = "s3://advising-data/changelog"
    output_root: str = "s3://advising-data/tables"
    campus_timezone: str = "UTC"
    # Glue database whose tables follow every commit (infra/emr.yaml output GlueDatabase); empty: no catalog.
    catalog_database: str = "advising"
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    # Cluster.
    release_label: str = "emr-7.9.0"
    log_uri: str = "s3://advising-emr-logs/emr/"
    service_role: str = "advising-emr-service-role"
    instance_profile: str = "advising-emr-instance-profile"
    subnet_ids: tuple = ()
    primary_instance_types: tuple = ("m7g.xlarge", "m6g.xlarge")
    core_instance_types: tuple = ("r7g.2xlarge", "r6g.2xlarge", "m7g.4xlarge")
    # Capacity in instance-fleet units (one unit per instance with the default weights of 1).
    core_on_demand_units: int = 1
    core_spot_units: int = 2
    max_units: int = 10
    max_on_demand_units: int = 3
    spot_timeout_minutes: int = 10
    idle_timeout_seconds: int = 3600
    # Campus jobs that fail must surface, not be retried silently by YARN: the scheduler owns retries.
    spark_conf: tuple = ("spark.yarn.maxAppAttempts=1",)
    # EMR Serverless: role the job runs as; empty means the account's `advising-emr-serverless-job` role.
    serverless_execution_role_arn: str = ""
    # EMR Serverless: s3:// URI of a packed virtualenv holding requirements.txt (see docs/emr.md).
    serverless_python_archive: str = ""
    # Airflow: run the DAG for past dates since start_date (backfill on deploy) or only the latest.
    dag_start_date: str = "2025-01-01"
    dag_catchup: bool = False
    aws_conn_id: str = "aws_default"

    def __post_init__(self) -> None:
        for name in ("bucket", "region", "release_label", "input_root", "output_root", "log_uri"):
            if not getattr(self, name):
                raise UsageError(f"EMR setting {name} must not be empty")
        if self.prefix != self.prefix.strip("/") or not self.prefix:
            raise UsageError(f"EMR setting prefix must be non-empty with no leading/trailing '/', got {self.prefix!r}")
        if not self.release_label.startswith("emr-7."):
            raise UsageError(f"EMR setting release_label must be an emr-7.x release (Spark 3.5), got {self.release_label!r}")
        if not self.log_uri.startswith("s3://"):
            raise UsageError(f"EMR setting log_uri must be an s3:// URI, got {self.log_uri!r}")
        check_timezone(self.campus_timezone)
        check_keep_versions(self.keep_versions)
        if self.catalog_database:
            check_catalog_database(self.catalog_database)
        parse_date(self.dag_start_date, "EMR setting dag_start_date")

    @property
    def artifact_root(self) -> str:
        """s3://bucket/prefix: every version of the artifacts lives below it."""
        return f"s3://{self.bucket}/{self.prefix}"


def _fields() -> dict:
    return {f.name: f for f in dataclasses.fields(EmrSettings)}


def _coerce(name: str, value, source: str):
    """Convert a value from TOML, an environment variable or a flag to the field's type."""
    default = _fields()[name].default
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if isinstance(default, tuple):
            items = value if isinstance(value, (list, tuple)) else [s for s in str(value).split(",")]
            return tuple(str(item).strip() for item in items if str(item).strip())
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except ValueError:
        kind = type(default).__name__ if not isinstance(default, tuple) else "comma-separated list"
        raise UsageError(f"EMR setting {name} from {source} must be a {kind}, got {value!r}") from None


def _check_names(names, source: str) -> None:
    unknown = sorted(set(names) - set(_fields()))
    if unknown:
        raise UsageError(f"unknown EMR setting {unknown[0]!r} in {source}; known: {', '.join(sorted(_fields()))}")


def config_path(explicit: Optional[str], env: Mapping[str, str]) -> Optional[Path]:
    """The config file to read, or None: an explicit or env-named file must exist, the default may not."""
    if explicit or env.get(CONFIG_ENV):
        path = Path(explicit or env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise UsageError(f"EMR config file not found: {path}")
        return path
    default = DEFAULT_CONFIG_PATH.expanduser()
    return default if default.is_file() else None


def load_settings(
    config: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    overrides: Sequence[str] = (),
) -> EmrSettings:
    """Defaults < config file < ADVISING_EMR_* environment < `field=value` overrides."""
    env = os.environ if env is None else env
    values: dict = {}
    path = config_path(config, env)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"EMR config file {path} is not valid TOML: {exc}") from None
        data = data.get("emr", data)
        _check_names(data, str(path))
        values.update({k: _coerce(k, v, str(path)) for k, v in data.items()})
    from_env = {key[len(ENV_PREFIX):].lower(): value for key, value in env.items() if key.startswith(ENV_PREFIX)}
    from_env.pop("config", None)
    _check_names(from_env, f"the environment ({ENV_PREFIX}*)")
    values.update({k: _coerce(k, v, f"${ENV_PREFIX}{k.upper()}") for k, v in from_env.items()})
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set takes FIELD=VALUE, got {item!r}")
        name = name.strip().replace("-", "_")
        _check_names([name], "--set")
        values[name] = _coerce(name, value, "--set")
    return EmrSettings(**values)


def add_settings_arguments(parser) -> None:
    """--config and --set, shared by the `advising emr` sub-commands."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help=f"TOML settings file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG_PATH} if present)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one setting (repeatable), e.g. --set bucket=my-artifacts",
    )
    parser.add_argument(
        "--artifact-version",
        default=None,
        help="artifact version to package or run (default: setting artifact_version, else package version + git commit)",
    )


def settings_from_args(args) -> EmrSettings:
    overrides = list(args.overrides)
    if getattr(args, "artifact_version", None):
        overrides.append(f"artifact_version={args.artifact_version}")
    return load_settings(args.config, overrides=overrides)

