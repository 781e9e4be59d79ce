"""`advising edge build`: package the Lambda@Edge token check with its configuration bundled in.

Lambda@Edge functions have no environment variables, so the Cognito pool, app client, group rules
and JWKS are validated here and written as `edge_auth/edge_config.json` inside the zip, next to the
handler package (`functions/edge_auth`). The zip is deterministic (sorted entries, fixed
timestamps) so the same inputs give the same bytes and the same S3 key, and it must stay under the
1 MB limit of viewer-request functions. Deploy with infra/edge-auth.yaml.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import functions.edge_auth
from functions.edge_auth.config import BUNDLED_CONFIG_NAME, ConfigError, EdgeConfig
from common.errors import UsageError

VIEWER_REQUEST_ZIP_LIMIT = 1_048_576
PACKAGE_DIR = "edge_auth"
# The earliest time a zip entry can carry: any fixed value makes the archive reproducible.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class EdgeBuildOptions:
    config_path: Path
    out_path: Path

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "EdgeBuildOptions":
        return cls(config_path=args.config, out_path=args.out)


def register(subparsers) -> None:
    edge = subparsers.add_parser(
        "edge",
        help="Lambda@Edge token check in front of the published reports",
        description="Build the Lambda@Edge viewer-request function that checks Cognito tokens.",
    )
    actions = edge.add_subparsers(dest="edge_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="validate a config and write the function zip (configuration and JWKS bundled)",
        description="Validate --config (Cognito pool, app client, token_use, group rules, JWKS) and write "
        f"the function package to --out; fails if the zip exceeds {VIEWER_REQUEST_ZIP_LIMIT:,} bytes.",
    )
    build.add_argument(
        "--config", required=True, type=Path, metavar="FILE",
        help="edge auth config JSON (see functions/edge_auth/edge_auth.example.json)",
    )
    build.add_argument("--out", required=True, type=Path, metavar="ZIP", help="where to write the zip")
    build.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    options = EdgeBuildOptions.from_namespace(args)
    if options.out_path.is_dir():
        raise UsageError(f"--out {options.out_path} is a directory; give the zip file path, e.g. dist/edge-auth.zip")
    config = load_config(options.config_path)
    archive = package_zip(config)
    if len(archive) > VIEWER_REQUEST_ZIP_LIMIT:
        raise UsageError(
            f"the package would be {len(archive):,} bytes, over the {VIEWER_REQUEST_ZIP_LIMIT:,}-byte limit of "
            "Lambda@Edge viewer-request functions; trim the JWKS"
        )
    options.out_path.parent.mkdir(parents=True, exist_ok=True)
    options.out_path.write_bytes(archive)
    print(
        f"{options.out_path}: {len(archive):,} bytes (limit {VIEWER_REQUEST_ZIP_LIMIT:,}), "
        f"sha256 {hashlib.sha256(archive).hexdigest()}"
    )
    return 0


def load_config(path: Path) -> EdgeConfig:
    """Read and validate the config; a string `jwks` names a JWKS file relative to the config."""
    raw = _read_json(path, "--config")
    if isinstance(raw, dict) and isinstance(raw.get("jwks"), str):
        raw = {**raw, "jwks": _read_json(path.parent / raw["jwks"], f"{path}: jwks file")}
    try:
        return EdgeConfig.from_dict(raw)
    except ConfigError as exc:
        raise UsageError(f"{path}: {exc}") from exc


def package_zip(config: EdgeConfig) -> bytes:
    """The function zip: every module of the handler package plus the bundled configuration."""
    source_dir = Path(functions.edge_auth.__file__).parent
    entries = {f"{PACKAGE_DIR}/{source.name}": source.read_bytes() for source in source_dir.glob("*.py")}
    bundled = json.dumps(config.to_dict(), indent=1, sort_keys=True) + "\n"
    entries[f"{PACKAGE_DIR}/{BUNDLED_CONFIG_NAME}"] = bundled.encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.create_system = 3  # Unix, so the permission bits below are honoured
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist or is not a file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {path} cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
