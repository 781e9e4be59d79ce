"""Versioned publishing end to end: commits, the Glue catalog (moto server over HTTP), rollback, retention,
the lease, and runs killed with SIGKILL at many moments.

Every test runs twice: with local paths through `os`, and with ADVISING_STORAGE=hadoop, which sends them
through Hadoop's FileSystem API as EMRFS serves s3:// on a cluster.
"""
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from advising.cli import main as cli
from advising.sample_data import generate
from jobs.config import RunConfig
from jobs.contract import TABLES
from jobs.pipeline import run_pipeline
from jobs.storage import Storage
from jobs.versions import LEASE, VERSION_DOC, OutputBusy, VersionStore

pytestmark = pytest.mark.slow

DATABASE = "advising_test"


@pytest.fixture(params=["os", "hadoop"], autouse=True)
def storage_mode(request, monkeypatch):
    if request.param == "hadoop":
        monkeypatch.setenv("ADVISING_STORAGE", "hadoop")
    else:
        monkeypatch.delenv("ADVISING_STORAGE", raising=False)
    return request.param


@pytest.fixture(scope="module")
def change_log(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions") / "in"
    generate(root, appointments=150, seed=5, days=6)
    days = sorted(p.name.split("=")[1] for p in (root / "appointments").iterdir())
    return root, dt.date.fromisoformat(days[2])


def run(spark, input_dir, output_dir, **kwargs):
    config = RunConfig(input=str(input_dir), output=str(output_dir), skip_quality=True, **kwargs)
    return run_pipeline(spark, config, log=lambda *_: None)


def by_path(spark, output, table):
    """The table as an analyst reads it: {output}/{table}/, whatever the layout behind it."""
    return sorted(spark.read.parquet(str(Path(output) / table)).collect())


def files_below(folder) -> set:
    folder = os.path.realpath(folder)
    return {
        os.path.relpath(os.path.join(here, name), folder)
        for here, dirs, names in os.walk(folder)
        for name in names
        if not name.startswith(("_", ".")) and "/_" not in here[len(folder):] and "/." not in here[len(folder):]
    }


def catalog_locations(database=DATABASE) -> dict:
    glue = boto3.client("glue")
    return {name: glue.get_table(DatabaseName=database, Name=name)["Table"] for name in TABLES}


def store_of(spark, output) -> VersionStore:
    return VersionStore(Storage(spark), str(output))


def test_each_run_publishes_a_version_that_readers_and_the_catalog_see_and_rollback_restores_it(
    spark, change_log, tmp_path, aws_env
):
    source, first_day = change_log
    output = tmp_path / "out"

    first = run(spark, source, output, as_of=first_day, catalog_database=DATABASE)
    assert first.published and first.catalog.startswith(f"catalog {DATABASE}: 4 of 4 tables switched")
    first_rows = {name: by_path(spark, output, name) for name in TABLES}
    assert {name: len(rows) for name, rows in first_rows.items()} == first.rows

    second = run(spark, source, output, catalog_database=DATABASE)
    assert second.mode == "incremental" and second.published
    second_rows = {name: by_path(spark, output, name) for name in TABLES}
    assert {name: len(rows) for name, rows in second_rows.items()} == second.rows
    assert second_rows["appointments"] != first_rows["appointments"]

    tables = catalog_locations()
    for name, (schema, partition_column) in TABLES.items():
        table = tables[name]
        location = table["StorageDescriptor"]["Location"]
        assert location.endswith(f"/_versions/{second.run_id}/{name}")
        # The catalog's location holds exactly the files a reader by path sees.
        assert files_below(location) == files_below(output / name) != set()
        assert sorted(spark.read.parquet(location).collect()) == second_rows[name]
        assert table["PartitionKeys"] == [{"Name": partition_column, "Type": "date"}]
        assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [
            f.name for f in schema.fields if f.name != partition_column
        ]
        params = table["Parameters"]
        assert params["projection.enabled"] == "true" and params[f"projection.{partition_column}.type"] == "date"
        assert params["storage.location.template"] == f"{location}/{partition_column}=${{{partition_column}}}"
        assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")

    assert cli(["rollback", "--output", str(output), "--to", first.run_id, "--catalog-database", DATABASE]) == 0
    assert {name: by_path(spark, output, name) for name in TABLES} == first_rows
    for name, table in catalog_locations().items():
        location = table["StorageDescriptor"]["Location"]
        assert location.endswith(f"/_versions/{first.run_id}/{name}")
        assert sorted(spark.read.parquet(location).collect()) == first_rows[name]

    # The next incremental run continues from the version rolled back to, and ends where the second did.
    third = run(spark, source, output, catalog_database=DATABASE)
    assert third.mode == "incremental" and third.files_read == second.files_read
    assert {name: by_path(spark, output, name) for name in TABLES} == second_rows


def test_retention_keeps_the_newest_versions_and_never_the_current_one_away(spark, change_log, tmp_path, capsys):
    source, _ = change_log
    output = tmp_path / "out"
    ids = [run(spark, source, output, full=True, keep_versions=2).run_id for _ in range(3)]
    assert [v.run_id for v in store_of(spark, output).versions()] == ids[1:]

    assert cli(["rollback", "--output", str(output), "--to", ids[1]]) == 0
    later = run(spark, source, output, full=True, keep_versions=1)
    assert [v.run_id for v in store_of(spark, output).versions()] == [later.run_id]

    capsys.readouterr()
    assert cli(["versions", "--output", str(output)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{later.run_id}  finished ") and line.endswith("(current)")
    assert f"appointments {later.rows['appointments']}" in line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["rollback", "--to", "20200101T000000Z-000000"], "no kept version '20200101T000000Z-000000'"),
        (["run", "--keep-versions", "0"], "--keep-versions must be at least 1"),
        (["run", "--catalog-database", "Bad-Name"], "--catalog-database must be a Glue database name"),
    ],
)
def test_misuse_is_one_line_and_exit_2(spark, change_log, tmp_path, capsys, argv, message):
    source, _ = change_log
    output = tmp_path / "out"
    run(spark, source, output)
    before = sorted(p.name for p in (output / "_versions").iterdir())
    extra = ["--output", str(output)] + (["--input", str(source)] if argv[0] == "run" else [])
    capsys.readouterr()
    assert cli(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in (output / "_versions").iterdir()) == before


def test_a_second_run_on_a_held_output_is_refused_in_one_line(spark, change_log, tmp_path, capsys):
    source, _ = change_log
    output = tmp_path / "out"
    first = run(spark, source, output)
    with store_of(spark, output).lease("20991231T000000Z-other"):
        capsys.readouterr()
        assert cli(["run", "--input", str(source), "--output", str(output), "--full"]) == 2
        err = capsys.readouterr().err
    assert "another run (20991231T000000Z-other" in err and err.count("\n") == 1
    assert store_of(spark, output).current_id() == first.run_id


def test_a_lease_is_free_when_it_expired_or_its_process_is_gone(spark, tmp_path):
    output = tmp_path / "out"
    now = 1_800_000_000.0
    store = VersionStore(Storage(spark), str(output), clock=lambda: now)
    lease_path = output / LEASE

    def held_by(host, pid, expires_at):
        output.mkdir(exist_ok=True)
        lease_path.write_text(json.dumps({"run_id": "other", "host": host, "pid": pid, "expires_at": expires_at}))

    held_by("node-7.cluster", 4242, now + 60)  # another machine, renewed a minute ago: alive
    with pytest.raises(OutputBusy, match=r"another run \(other, node-7.cluster pid 4242\)"):
        with store.lease("mine"):
            pass

    held_by("node-7.cluster", 4242, now - 1)  # stopped renewing: expired, taken over
    with store.lease("mine"):
        assert json.loads(lease_path.read_text())["run_id"] == "mine"
    assert not lease_path.exists()

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    held_by(socket.gethostname(), gone.pid, now + 600)  # this machine, process gone: free at once
    with store.lease("mine"):
        assert json.loads(lease_path.read_text())["run_id"] == "mine"


def test_a_catalog_failure_after_the_commit_keeps_the_data_and_the_next_run_repairs_it(
    spark, change_log, tmp_path, aws_env, monkeypatch, capsys
):
    source, first_day = change_log
    output = tmp_path / "out"
    args = ["--input", str(source), "--output", str(output), "--catalog-database", DATABASE, "--skip-quality"]
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed.getsockname()[1]}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    capsys.readouterr()
    assert cli(["run", *args, "--as-of", first_day.isoformat()]) == 1
    captured = capsys.readouterr()
    committed = store_of(spark, output).current_id()
    assert f"run {committed}: full (no previous state)" in captured.out.splitlines()
    (line,) = captured.err.splitlines()
    assert f"version {committed} is committed, but the Glue tables in {DATABASE} were not updated" in line

    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    assert cli(["run", *args, "--as-of", first_day.isoformat()]) == 0  # up to date: only the catalog is repaired
    assert "up-to-date" in capsys.readouterr().out
    for name, table in catalog_locations().items():
        assert table["StorageDescriptor"]["Location"].endswith(f"/_versions/{committed}/{name}")


def test_leftovers_of_a_dead_run_are_removed_and_the_view_follows_the_pointer(spark, change_log, tmp_path):
    source, first_day = change_log
    output = tmp_path / "out"
    first = run(spark, source, output, as_of=first_day)
    second = run(spark, source, output)
    # A run killed mid-write left a folder without _version.json; one killed right after the commit left
    # the local view on the version before.
    half = output / "_versions" / "20991231T000000Z-dead00" / "appointments"
    half.mkdir(parents=True)
    (half / "part-0.parquet").write_bytes(b"PAR1")
    os.unlink(output / "_current")
    os.symlink(f"_versions/{first.run_id}", output / "_current")

    third = run(spark, source, output)
    assert third.mode == "up-to-date"
    assert not (output / "_versions" / "20991231T000000Z-dead00").exists()
    assert os.readlink(output / "_current") == f"_versions/{second.run_id}"


def _run_command(source, output):
    code = "import sys; from advising.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "run", "--input", str(source), "--output", str(output), "--full",
            "--skip-quality", "--keep-versions", "2"]


def _assert_complete(spark, output, run_id):
    """The version's files are all there, and its tables hold the rows its manifest promises."""
    version = store_of(spark, output).read(run_id)
    assert version is not None, f"version {run_id} is not complete"
    for name, table in version.tables.items():
        folder = output / "_versions" / run_id / name
        assert files_below(folder) == set(table["files"])
        assert spark.read.parquet(str(folder)).count() == version.rows[name]


@pytest.mark.timeout(1500)
def test_a_run_killed_at_any_moment_leaves_a_complete_version_current(spark, change_log, tmp_path):
    source, _ = change_log
    output = tmp_path / "out"
    started = time.monotonic()
    subprocess.run(_run_command(source, output), check=True, capture_output=True)
    whole_run = time.monotonic() - started  # scales the kill moments to this machine; nothing is asserted on it

    for fraction in (0.25, 0.5, 0.7, 0.85, 0.95):
        before = store_of(spark, output).current_id()
        proc = subprocess.Popen(_run_command(source, output), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=whole_run * fraction)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        current = store_of(spark, output).current_id()
        assert current == before or current > before
        _assert_complete(spark, output, current)
        shown = os.path.basename(os.path.realpath(output / "_current"))
        assert shown in (before, current)
        _assert_complete(spark, output, shown)
        assert sorted(spark.read.parquet(str(output / "appointments")).collect()) == sorted(
            spark.read.parquet(str(output / "_versions" / shown / "appointments")).collect()
        )

        after = run(spark, source, output, full=True, keep_versions=2)  # the next run completes
        assert after.published
        assert all((p / VERSION_DOC).is_file() for p in (output / "_versions").iterdir())
        assert os.readlink(output / "_current") == f"_versions/{after.run_id}"
        assert not (output / LEASE).exists()
