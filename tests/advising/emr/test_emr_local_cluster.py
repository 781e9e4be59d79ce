"""The packaged artifacts run on a real multi-JVM Spark (local-cluster: a master, two workers, one executor
JVM each) with the EMR step's own options and arguments, and nothing but jobs.zip to find the code.

Isolation (why this proves the zip is complete): the Python that runs the driver and the executors is a
throwaway venv whose only link to the project's venv is a .pth line naming its site-packages. Lines of
a .pth only extend sys.path; the .pth files inside that directory, among them the editable install's
`__editable__*.pth` hook that makes `jobs` importable from anywhere, are not processed. So pyspark and
great_expectations are found (EMR provides the first, the bootstrap action installs the second), and
`jobs` only through --py-files. The subprocess runs from an empty directory with PYTHONNOUSERSITE=1.

The "cluster" gets its spark-defaults from bootstrap/cluster-configuration.json, as on EMR, less what
only means something on YARN nodes, plus small shuffles for a two-core machine; the step itself is
unchanged. SPARK_HOME is a directory of links to pyspark's, so the workers' scratch space (SPARK_HOME/work)
lands in the test's temporary directory instead of the virtualenv.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from advising.bundle import build_bundle
from advising.emr.settings import load_settings
from advising.emr.steps import Artifacts, pipeline_steps
from jobs.config import RunConfig

REPO = Path(__file__).resolve().parents[3]
MASTER = "local-cluster[2,1,1024]"
# Runs on the executors: which `jobs` they import, and from where.
PROBE = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
def where(_):
    import jobs.config, os
    yield "%s %s" % (os.getpid(), jobs.config.__file__)
print("\\n".join("EXECUTOR " + line for line in spark.sparkContext.parallelize(range(4), 4).mapPartitions(where).collect()))
spark.stop()
"""


# Keys of the EMR spark-defaults that name node paths or need YARN's external shuffle service.
EMR_ONLY = {"spark.pyspark.python", "spark.pyspark.driver.python", "spark.dynamicAllocation.enabled",
            "spark.shuffle.service.enabled"}
LOCAL_DEFAULTS = {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory) -> Path:
    import pyspark

    home = tmp_path_factory.mktemp("spark-home")
    for entry in Path(pyspark.__file__).parent.iterdir():
        if entry.name not in ("work", "conf"):
            (home / entry.name).symlink_to(entry)
    configuration = json.loads((REPO / "bootstrap" / "cluster-configuration.json").read_text())
    [defaults] = [c["Properties"] for c in configuration if c["Classification"] == "spark-defaults"]
    properties = {k: v for k, v in defaults.items() if k not in EMR_ONLY} | LOCAL_DEFAULTS
    (home / "conf").mkdir()
    (home / "conf" / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in sorted(properties.items())))
    return home


@pytest.fixture(scope="module")
def isolated_python(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("isolated-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return str(python)


def isolated_env(python: str, spark_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "PYTHON", "SPARK"))}
    env.update(
        PYSPARK_PYTHON=python,
        PYSPARK_DRIVER_PYTHON=python,
        PYTHONNOUSERSITE="1",
        SPARK_HOME=str(spark_home),
        SPARK_CONF_DIR=str(spark_home / "conf"),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    return env


def test_isolated_python_cannot_import_the_project(isolated_python, spark_home, tmp_path):
    check = "import pyspark, great_expectations\ntry:\n import jobs\nexcept ImportError:\n print('no jobs')"
    done = subprocess.run([isolated_python, "-c", check], cwd=tmp_path, env=isolated_env(isolated_python, spark_home),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no jobs"


@pytest.fixture(scope="module")
def packaged_step(tmp_path_factory):
    """The bundle, sample data, and the EMR step built for them with local paths."""
    from advising.sample_data import generate

    root = tmp_path_factory.mktemp("local-cluster")
    dist = build_bundle(root / "dist")
    generate(root / "input", appointments=200, seed=1, days=10)
    last_day = max(p.name for p in (root / "input" / "appointments").iterdir())
    run_date = dt.date.fromisoformat(last_day.split("=")[1])
    settings = load_settings(env={})
    config = RunConfig(str(root / "input"), str(root / "output"), settings.campus_timezone, as_of=run_date)
    [step] = pipeline_steps(config, Artifacts(str(dist.directory)), "transient", settings.spark_conf)
    return root, dist, step


def spark_submit_tool() -> str:
    """spark-submit of the Python running the tests (pip installs it beside the interpreter), else from PATH."""
    beside = Path(sys.executable).with_name("spark-submit")
    found = str(beside) if beside.is_file() else shutil.which("spark-submit")
    if found is None:
        pytest.fail(f"spark-submit is neither beside {sys.executable} nor on PATH", pytrace=False)
    return found


def spark_submit(argv, python, spark_home, cwd):
    cwd.mkdir(exist_ok=True)
    return subprocess.run(argv, cwd=cwd, env=isolated_env(python, spark_home), capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_packaged_step_runs_on_a_local_cluster(packaged_step, isolated_python, spark_home):
    root, dist, step = packaged_step
    emr_args = step.emr_step()["HadoopJarStep"]["Args"]
    # Exactly the EMR step's spark-submit, with a local master instead of YARN cluster mode.
    assert emr_args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    argv = [spark_submit_tool(), "--master", MASTER, *emr_args[3:]]
    assert argv[argv.index("--py-files") + 1] == str(dist.jobs_zip)

    done = spark_submit(argv, isolated_python, spark_home, root / "cwd")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "quality gate passed" in done.stdout and "published" in done.stdout
    for table in ("appointments", "advisor_daily_load", "booking_trends_daily", "quarantine"):
        assert list((root / "output" / table).rglob("*.parquet")), f"{table} was not published"

    import duckdb

    rows = duckdb.sql(f"select count(*) from read_parquet('{root / 'output' / 'appointments'}/**/*.parquet')").fetchone()[0]
    assert rows > 0
    assert list((spark_home / "work").glob("app-*/*/jobs.zip")), "executors did not receive jobs.zip"


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_executors_import_jobs_from_the_zip(packaged_step, isolated_python, spark_home):
    """The pipeline runs no Python on executors today; this shows what any UDF added later would import."""
    root, dist, step = packaged_step
    probe = root / "probe.py"
    probe.write_text(PROBE)
    argv = [spark_submit_tool(), "--master", MASTER, *step.submit_options(), str(probe)]
    done = spark_submit(argv, isolated_python, spark_home, root / "probe-cwd")
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [l.split(" ", 2)[1:] for l in done.stdout.splitlines() if l.startswith("EXECUTOR ")]
    assert len(lines) == 4
    assert all("jobs.zip" in path and str(REPO) not in path for _, path in lines), lines
