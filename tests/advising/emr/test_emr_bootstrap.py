"""The bootstrap action, run for real with bash: installs, is idempotent, fails fast with one clear line."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "bootstrap" / "install-requirements.sh"


def run(*args: str, state_dir: Path):
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "ADVISING_BOOTSTRAP_STATE_DIR": str(state_dir)},
    )


def test_installs_then_is_a_no_op(tmp_path):
    # Already satisfied in this interpreter, so pip needs no network; the script path is the real one.
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# pinned\npackaging=={version('packaging')}\n")
    first = run(str(requirements), sys.executable, state_dir=tmp_path / "state")
    assert first.returncode == 0, first.stderr
    assert "installing 1 pinned requirements" in first.stderr and "advising-bootstrap: done" in first.stderr
    assert len(list((tmp_path / "state").glob("requirements-*.done"))) == 1
    second = run(str(requirements), sys.executable, state_dir=tmp_path / "state")
    assert second.returncode == 0
    assert "already installed" in second.stderr and "installing" not in second.stderr


def test_fails_fast_with_one_line(tmp_path):
    usage = run(state_dir=tmp_path)
    assert usage.returncode == 2 and usage.stderr.startswith("advising-bootstrap: FAILED: usage")

    missing = run(str(tmp_path / "absent.txt"), sys.executable, state_dir=tmp_path / "state")
    assert missing.returncode != 0
    failed = [l for l in missing.stderr.splitlines() if l.startswith("advising-bootstrap: FAILED")]
    assert len(failed) == 1 and "cp " in failed[0]

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("packaging\n")
    no_python = run(str(requirements), "/nonexistent/python3.11", state_dir=tmp_path / "state")
    assert no_python.returncode != 0
    assert sum(l.startswith("advising-bootstrap: FAILED") for l in no_python.stderr.splitlines()) == 1
    assert not (tmp_path / "state").exists()
