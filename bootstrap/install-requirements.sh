#!/bin/bash
# EMR bootstrap action: install the pipeline's pinned Python runtime requirements on this node.
#
#   install-requirements.sh REQUIREMENTS [PYTHON]
#
# REQUIREMENTS is the requirements.txt that `advising emr package` uploaded next to this script
# (s3://... or a local path). PYTHON defaults to /usr/bin/python3.11, the interpreter that
# cluster-configuration.json gives PySpark: great-expectations 1.x needs Python >= 3.10, and the
# python3 of EMR 7 (Amazon Linux 2023) is 3.9. pyspark itself is never installed here: EMR ships it.
#
# Idempotent: a marker named after the requirements' SHA-256 makes a second run on the same node
# a no-op. Fails fast: the first failing command ends the script with one "advising-bootstrap: FAILED"
# line (in the node's bootstrap-actions stderr log), which fails the cluster at provisioning time
# instead of failing the first Spark step with an ImportError.
set -euo pipefail

log() { echo "advising-bootstrap: $*" >&2; }
trap 'log "FAILED (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  log "FAILED: usage: install-requirements.sh s3://BUCKET/PREFIX/VERSION/requirements.txt [PYTHON]"
  exit 2
fi
REQUIREMENTS_URI=$1
PYTHON=${2:-/usr/bin/python3.11}
STATE_DIR=${ADVISING_BOOTSTRAP_STATE_DIR:-/var/lib/advising-bootstrap}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
case "$REQUIREMENTS_URI" in
  s3://*) aws s3 cp --only-show-errors "$REQUIREMENTS_URI" "$WORK/requirements.txt" ;;
  *) cp "$REQUIREMENTS_URI" "$WORK/requirements.txt" ;;
esac

DIGEST=$(sha256sum "$WORK/requirements.txt" | cut -d' ' -f1)
MARKER="$STATE_DIR/requirements-$DIGEST.done"
if [ -e "$MARKER" ]; then
  log "requirements $DIGEST already installed for $PYTHON; nothing to do"
  exit 0
fi

if [ ! -x "$PYTHON" ]; then
  log "installing $(basename "$PYTHON") from the distribution's packages"
  $SUDO dnf install -y -q "$(basename "$PYTHON")" "$(basename "$PYTHON")-pip"
fi
if [ ! -x "$PYTHON" ]; then
  log "FAILED: $PYTHON is not installed and could not be installed"
  exit 1
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || $SUDO "$PYTHON" -m ensurepip --upgrade

log "installing $(grep -cvE '^\s*(#|$)' "$WORK/requirements.txt" || true) pinned requirements ($DIGEST) for $("$PYTHON" --version 2>&1)"
$SUDO "$PYTHON" -m pip install --quiet --no-input --disable-pip-version-check --requirement "$WORK/requirements.txt"

$SUDO mkdir -p "$STATE_DIR"
$SUDO touch "$MARKER"
log "done"
