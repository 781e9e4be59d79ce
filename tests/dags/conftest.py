"""DAG tests run offline: a throwaway AIRFLOW_HOME, a metadata database URL that cannot be opened, and
an AWS endpoint nobody listens on, so a DAG file that touched either at parse time would fail to load."""
from __future__ import annotations

import os
import tempfile

import pytest

# Airflow reads its configuration once, at first import: set it before any test module imports airflow.
_HOME = tempfile.mkdtemp(prefix="advising-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "dags")
UNUSABLE_DB = f"sqlite:///{_HOME}/no-such-dir/airflow.db"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = UNUSABLE_DB


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    """No developer settings, no AWS credentials, an AWS endpoint that refuses connections."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in list(os.environ):
        if key.startswith(("ADVISING_EMR_", "AWS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return monkeypatch
