"""`advising bundle`: deterministic jobs.zip, generated pinned requirements, bootstrap files that agree."""
from __future__ import annotations

import json
import re
import zipfile
from importlib.metadata import version
from pathlib import Path

from advising.bundle import JOBS_DIR, SHIPPED_PACKAGES, build_bundle, read_constraints, runtime_requirements

REPO = Path(__file__).resolve().parents[3]


def test_bundle_contents(tmp_path):
    bundle = build_bundle(tmp_path / "dist")
    assert sorted(p.name for p in bundle.directory.iterdir()) == sorted(p.name for p in bundle.files())
    names = zipfile.ZipFile(bundle.jobs_zip).namelist()
    assert names == sorted(names)
    assert {name.split("/")[0] for name in names} == {"common", "jobs"}
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    expected = sorted(
        f"{package.name}/{p.relative_to(package).as_posix()}"
        for package in SHIPPED_PACKAGES
        for p in package.rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert [n for n in names if n.endswith(".py")] == expected
    assert bundle.main_py.read_text() == (JOBS_DIR / "main.py").read_text()
    assert bundle.bootstrap_script.stat().st_mode & 0o111


def test_jobs_zip_is_byte_for_byte_reproducible(tmp_path):
    first = build_bundle(tmp_path / "a").jobs_zip.read_bytes()
    second = build_bundle(tmp_path / "b").jobs_zip.read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a" / "jobs.zip") as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_requirements_are_pinned_from_constraints_without_spark(tmp_path):
    lines = runtime_requirements()
    pins = read_constraints()
    assert "great-expectations==1.24.1" in lines
    for line in lines:
        name, _, pinned = line.partition("==")
        assert pins[name] == pinned
    names = {line.split("==")[0] for line in lines}
    assert not names & {"pyspark", "py4j", "advising-analytics", "boto3"}
    # What GX needs at run time is pinned too, at the versions tested here (numpy<2, pandas 2.2).
    assert f"numpy=={version('numpy')}" in lines and f"pandas=={version('pandas')}" in lines
    written = build_bundle(tmp_path / "dist").requirements.read_text().splitlines()
    assert [l for l in written if l and not l.startswith("#")] == lines


def test_bootstrap_python_matches_the_cluster_configuration():
    script = (REPO / "bootstrap" / "install-requirements.sh").read_text()
    default_python = re.search(r"PYTHON=\$\{2:-([^}]+)\}", script).group(1)
    config = {c["Classification"]: c for c in json.loads((REPO / "bootstrap" / "cluster-configuration.json").read_text())}
    spark = config["spark-defaults"]["Properties"]
    exports = config["spark-env"]["Configurations"][0]["Properties"]
    assert spark["spark.pyspark.python"] == exports["PYSPARK_PYTHON"] == default_python
    assert spark["spark.sql.adaptive.enabled"] == "true"
    assert spark["spark.dynamicAllocation.enabled"] == "true"
    assert spark["spark.sql.parquet.fs.optimized.committer.optimization-enabled"] == "true"
    assert spark["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    assert spark["spark.sql.session.timeZone"] == "UTC"
    assert config["spark-hive-site"]["Properties"]["hive.metastore.client.factory.class"].endswith(
        "AWSGlueDataCatalogHiveClientFactory"
    )


def test_bundle_command(cli, tmp_path):
    code, out, err = cli("bundle", "--out", str(tmp_path / "dist"))
    assert code == 0, err
    assert [Path(line).name for line in out.split()] == [
        "jobs.zip", "main.py", "requirements.txt", "install-requirements.sh", "cluster-configuration.json",
    ]
    (tmp_path / "file").write_text("x")
    code, out, err = cli("bundle", "--out", str(tmp_path / "file"))
    assert code == 2 and err.count("\n") == 1 and "not a directory" in err
