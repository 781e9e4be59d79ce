"""EMR settings: documented defaults, then config file, environment and --set, each winning over the last."""
from __future__ import annotations

from pathlib import Path

import pytest

from advising.emr.settings import EmrSettings, load_settings
from common.errors import UsageError


def test_defaults_need_no_file_and_no_environment():
    settings = load_settings(env={})
    assert settings == EmrSettings()
    assert settings.artifact_root == "s3://advising-emr-artifacts/advising"
    assert settings.release_label.startswith("emr-7.")


def test_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "emr.toml"
    config.write_text(
        '[emr]\nbucket = "from-file"\nprefix = "p"\nsubnet_ids = ["subnet-1", "subnet-2"]\n'
        'core_spot_units = 4\ndag_catchup = true\ncampus_timezone = "America/Chicago"\n'
    )
    env = {"ADVISING_EMR_CONFIG": str(config), "ADVISING_EMR_PREFIX": "from-env", "ADVISING_EMR_CORE_SPOT_UNITS": "5"}
    settings = load_settings(env=env, overrides=["core_spot_units=6", "max-units=12"])
    assert settings.bucket == "from-file"
    assert settings.prefix == "from-env"
    assert settings.core_spot_units == 6
    assert settings.max_units == 12
    assert settings.subnet_ids == ("subnet-1", "subnet-2")
    assert settings.dag_catchup is True
    assert settings.campus_timezone == "America/Chicago"
    # An explicit --config wins over $ADVISING_EMR_CONFIG.
    other = tmp_path / "other.toml"
    other.write_text('bucket = "other"\n')
    assert load_settings(str(other), env=env).bucket == "other"


def test_lists_and_booleans_from_the_environment():
    settings = load_settings(env={"ADVISING_EMR_SUBNET_IDS": "subnet-a, subnet-b", "ADVISING_EMR_DAG_CATCHUP": "yes"})
    assert settings.subnet_ids == ("subnet-a", "subnet-b")
    assert settings.dag_catchup is True


@pytest.mark.parametrize(
    "env, overrides, message",
    [
        ({"ADVISING_EMR_BUKET": "x"}, [], "unknown EMR setting 'buket'"),
        ({}, ["max_units=lots"], "max_units from --set must be a int"),
        ({}, ["dag_catchup=maybe"], "dag_catchup from --set must be a bool"),
        ({}, ["bucket"], "--set takes FIELD=VALUE"),
        ({}, ["release_label=emr-6.15.0"], "emr-7.x"),
        ({}, ["campus_timezone=+02:00"], "IANA"),
        ({}, ["log_uri=/tmp/logs"], "s3://"),
        ({}, ["prefix=/advising/"], "prefix"),
        ({}, ["dag_start_date=2025-02-30"], "dag_start_date"),
        ({"ADVISING_EMR_CONFIG": "/nonexistent/emr.toml"}, [], "config file not found"),
    ],
)
def test_bad_settings_fail_with_one_line(env, overrides, message):
    with pytest.raises(UsageError, match=message) as info:
        load_settings(env=env, overrides=overrides)
    assert "\n" not in str(info.value)


def test_invalid_toml_is_one_line(tmp_path):
    config = tmp_path / "emr.toml"
    config.write_text("bucket = \n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_settings(str(config), env={})


def test_default_config_path_is_read_when_present():
    # The autouse fixture points HOME at an empty temporary directory.
    assert load_settings(env={}) == EmrSettings()
    default = Path.home() / ".config" / "advising" / "emr.toml"
    default.parent.mkdir(parents=True)
    default.write_text('bucket = "from-home"\n')
    assert load_settings(env={}).bucket == "from-home"
