#!/usr/bin/env bash
# One clear line per missing prerequisite, never a stack trace.
set -u
python=${1:-python3}
missing=0
if ! command -v "$python" >/dev/null 2>&1 || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python 3.11 or newer is required as '$python' (Debian/Ubuntu: apt-get install python3.11 python3.11-venv; or make PYTHON=/path/to/python3.11)" >&2
  missing=1
elif ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "error: Python's venv module is missing (Debian/Ubuntu: apt-get install python3-venv)" >&2
  missing=1
fi
java_bin=${JAVA_HOME:+$JAVA_HOME/bin/}java
if ! command -v "$java_bin" >/dev/null 2>&1; then
  echo "error: Java 17 is required for Spark (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; or set JAVA_HOME)" >&2
  missing=1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: Node.js and npm are required for the ASL validator used by the tests (Debian/Ubuntu: apt-get install nodejs npm)" >&2
  missing=1
fi
exit $missing
