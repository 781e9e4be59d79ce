"""`advising bundle`: the artifacts a Spark cluster needs to run the pipeline, built from this checkout.

    jobs.zip                     the `jobs` package and the shared `common` package it imports, for
                                 spark-submit --py-files (deterministic bytes)
    main.py                      the spark-submit entry script (copy of jobs/main.py)
    requirements.txt             the cluster's pinned Python runtime requirements, derived from what jobs/
                                 imports and pinned from constraints.txt (pyspark/py4j excluded: EMR has them)
    install-requirements.sh      the EMR bootstrap action (copy of bootstrap/)
    cluster-configuration.json   the EMR cluster configuration (copy of bootstrap/)

`advising emr package` uploads this directory; developers run it locally with
`spark-submit --py-files dist/jobs.zip dist/main.py --input ... --output ...`.
"""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from common.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
JOBS_DIR = REPO_ROOT / "jobs"
# What ships to the cluster: the data plane and the neutral package it shares with the control plane.
SHIPPED_PACKAGES = (JOBS_DIR, REPO_ROOT / "common")
BOOTSTRAP_DIR = REPO_ROOT / "bootstrap"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
# EMR installs Spark's own Python side; pip-installing it on the nodes would shadow the cluster's build.
# boto3 (only the Glue catalog update imports it) is part of every EMR 7.x node's Python.
PROVIDED_BY_EMR = {"pyspark", "py4j", "boto3"}
# Zip entries get this timestamp so the same sources always give the same bytes (and artifact hash).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    directory: Path
    jobs_zip: Path
    main_py: Path
    requirements: Path
    bootstrap_script: Path
    cluster_configuration: Path

    def files(self) -> list:
        """Every artifact, in upload order (the manifest is written by the uploader after these)."""
        return [self.jobs_zip, self.main_py, self.requirements, self.bootstrap_script, self.cluster_configuration]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write_jobs_zip(target: Path, packages=SHIPPED_PACKAGES) -> Path:
    """Zip the packages with sorted entries, fixed timestamps and modes, and no bytecode."""
    files = sorted(
        (path, package_dir)
        for package_dir in packages
        for path in package_dir.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    )
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, package_dir in files:
            info = zipfile.ZipInfo(f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return target


def imported_modules(packages=SHIPPED_PACKAGES) -> set:
    """Top-level modules the shipped packages import anywhere (including imports inside functions)."""
    names = set()
    for path in sorted(p for package_dir in packages for p in package_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {package_dir.name for package_dir in packages} - {"__future__"}


def read_constraints(path: Path = CONSTRAINTS) -> dict:
    if not path.is_file():
        raise UsageError(f"{path} is missing: the cluster requirements are pinned from it")
    pins = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[_normalize(name.split("[")[0])] = version.strip()
    return pins


def _closure(roots: set) -> set:
    """Distributions needed at run time by `roots`, following Requires-Dist with its markers and extras
    as they evaluate for this Python (the cluster runs the same minor version: see bootstrap/)."""
    from packaging.requirements import Requirement

    seen: set = set()
    queue = [(name, frozenset()) for name in roots]
    while queue:
        name, extras = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            raise UsageError(f"{name} is imported by jobs/ but not installed here; run `make setup`") from None
        for text in requires:
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            queue.append((_normalize(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def runtime_requirements(constraints: Path = CONSTRAINTS) -> list:
    """`name==version` lines for everything jobs/ needs on the cluster beyond what EMR provides."""
    owners = metadata.packages_distributions()
    own = {_normalize(d) for package_dir in SHIPPED_PACKAGES for d in owners.get(package_dir.name, [])}
    roots = set()
    for module in imported_modules():
        dists = owners.get(module)
        if not dists:
            raise UsageError(f"jobs/ imports {module!r}, which no installed distribution provides")
        roots.update(_normalize(d) for d in dists)
    roots -= own | PROVIDED_BY_EMR
    needed = _closure(roots) - PROVIDED_BY_EMR - own
    pins = read_constraints(constraints)
    missing = sorted(needed - set(pins))
    if missing:
        raise UsageError(f"{missing[0]} is needed on the cluster but not pinned in {constraints.name}; regenerate it")
    return [f"{name}=={pins[name]}" for name in sorted(needed)]


def build_bundle(out_dir) -> Bundle:
    """Write every artifact into out_dir (created if needed) and return their paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    for needed in (JOBS_DIR / "main.py", BOOTSTRAP_DIR / "install-requirements.sh", BOOTSTRAP_DIR / "cluster-configuration.json"):
        if not needed.is_file():
            raise UsageError(f"{needed} is missing: bundle from a full checkout of the repository")
    requirements = out / "requirements.txt"
    requirements.write_text(
        "# Generated by `advising bundle` from jobs/ imports and constraints.txt; do not edit.\n"
        "# Installed on every EMR node by install-requirements.sh (pyspark and py4j come with EMR).\n"
        + "".join(line + "\n" for line in runtime_requirements())
    )
    bundle = Bundle(
        directory=out,
        jobs_zip=write_jobs_zip(out / "jobs.zip"),
        main_py=Path(shutil.copyfile(JOBS_DIR / "main.py", out / "main.py")),
        requirements=requirements,
        bootstrap_script=Path(shutil.copyfile(BOOTSTRAP_DIR / "install-requirements.sh", out / "install-requirements.sh")),
        cluster_configuration=Path(
            shutil.copyfile(BOOTSTRAP_DIR / "cluster-configuration.json", out / "cluster-configuration.json")
        ),
    )
    bundle.bootstrap_script.chmod(0o755)
    return bundle


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bundle",
        help="build the cluster artifacts (jobs.zip, main.py, requirements.txt, bootstrap) into a directory",
        description="Build what spark-submit and an EMR cluster need: jobs.zip for --py-files, the entry "
        "script main.py, the pinned runtime requirements, and the bootstrap action with the cluster configuration.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    parser.set_defaults(func=_bundle)


def _bundle(args) -> int:
    bundle = build_bundle(args.out)
    for path in bundle.files():
        print(path)
    return 0
