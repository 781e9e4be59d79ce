"""`advising emr package`: upload one immutable artifact version to s3://BUCKET/PREFIX/<version>/.

The version is the package version plus the git commit (plus `-dirty` when the bundled sources have
uncommitted changes). A manifest of SHA-256 digests is written last, so its presence means a complete
upload: packaging the same content again is a no-op, and different content under an existing version
is refused instead of silently changing what past runs ran.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from advising.bundle import REPO_ROOT, Bundle, build_bundle
from advising.emr.aws import aws_errors, split_s3_uri
from advising.emr.steps import Artifacts
from common.errors import UsageError

# What goes into a bundle: a change here makes the checkout's artifacts differ from the commit's.
BUNDLED_PATHS = ("jobs", "bootstrap", "pyproject.toml", "constraints.txt")


def artifact_version(repo: Path = REPO_ROOT) -> str:
    """<package version>-<12-hex commit>[-dirty], e.g. 0.1.0-3f2c9a1b7d4e."""
    try:
        version = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        raise UsageError(f"cannot read the package version from {repo / 'pyproject.toml'}") from None

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is None or done.returncode != 0:
            raise UsageError(f"{repo} is not a git checkout: set the artifact version (--artifact-version or "
                             "ADVISING_EMR_ARTIFACT_VERSION)")
        return done.stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = git("status", "--porcelain", "--", *BUNDLED_PATHS)
    return f"{version}-{commit}" + ("-dirty" if dirty else "")


def resolve_version(settings) -> str:
    return settings.artifact_version or artifact_version()


def manifest(bundle: Bundle, version: str) -> dict:
    return {
        "version": version,
        "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bundle.files()},
    }


@dataclass(frozen=True)
class PackageResult:
    location: str
    uploaded: bool
    files: tuple


def _existing_manifest(s3, artifacts: Artifacts):
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(artifacts.manifest)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def upload(s3, bundle: Bundle, artifacts: Artifacts, version: str) -> PackageResult:
    wanted = manifest(bundle, version)
    names = tuple(sorted(wanted["files"]))
    with aws_errors(f"reading {artifacts.manifest}"):
        existing = _existing_manifest(s3, artifacts)
    if existing is not None:
        if existing.get("files") != wanted["files"]:
            raise UsageError(
                f"artifact version {version} is already uploaded with different content; commit your "
                "changes (a new commit is a new version) or pass another --artifact-version"
            )
        return PackageResult(artifacts.base, False, names)
    with aws_errors(f"uploading to {artifacts.base}"):
        for path in bundle.files():
            bucket, key = split_s3_uri(f"{artifacts.base}/{path.name}")
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        bucket, key = split_s3_uri(artifacts.manifest)
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(wanted, indent=2, sort_keys=True).encode(),
                      ContentType="application/json")
    return PackageResult(artifacts.base, True, names)


def package(s3, artifacts: Artifacts, version: str) -> PackageResult:
    with tempfile.TemporaryDirectory(prefix="advising-bundle-") as tmp:
        return upload(s3, build_bundle(tmp), artifacts, version)


def require_uploaded(s3, artifacts: Artifacts) -> None:
    """Fail before submitting a run whose code is not (completely) in S3."""
    with aws_errors(f"reading {artifacts.manifest}"):
        if _existing_manifest(s3, artifacts) is None:
            raise UsageError(f"no artifacts at {artifacts.base}/: run `advising emr package` first")
