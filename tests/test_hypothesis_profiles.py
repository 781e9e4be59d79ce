"""The Hypothesis profiles of tests/conftest.py govern every property test, and CI draws the same cases each run.

Issue 16: a property test must not fail CI on a case nobody has seen before. Under CI=true the `ci`
profile derandomizes (cases derived from each test's name, no example database), so two runs draw the
same cases; locally the `dev` profile keeps exploring.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# Settings a property test could set for itself and thereby escape the profile.
PROFILE_OWNED = {"max_examples", "derandomize", "database", "phases"}


def _hypothesis_decorations(tree: ast.AST):
    """(line, what) for every `settings(...)` call that sets a profile-owned field, and every `@seed(...)`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name == "seed":
            yield node.lineno, "seed(...)"
        if name == "settings":
            for keyword in node.keywords:
                if keyword.arg in PROFILE_OWNED:
                    yield node.lineno, f"settings({keyword.arg}=...)"


def test_no_property_test_overrides_what_the_profile_decides():
    property_files = []
    escapes = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == "conftest.py" and path.parent == TESTS:
            continue  # where the profiles are registered
        text = path.read_text(encoding="utf-8")
        if "@given" in text:
            property_files.append(path.relative_to(TESTS))
        escapes += [f"{path.relative_to(TESTS)}:{line} {what}" for line, what in _hypothesis_decorations(ast.parse(text))]

    assert escapes == []
    # The scan saw the suite's property tests (it would pass vacuously on an empty or moved tree).
    assert {str(path) for path in property_files} >= {
        "statemachine/test_account_validation.py", "functions/edge_auth/test_edge_auth_properties.py"
    }


def _run_property_test_verbosely(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "HYPOTHESIS_PROFILE")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-verbosity=verbose", "-s",
         str(TESTS / "statemachine" / "test_account_validation.py"), "-k", "normalising_twice"],
        capture_output=True, text=True, timeout=300, env=env, cwd=TESTS.parent,
    )


@pytest.mark.slow
def test_two_ci_runs_print_the_same_profile_and_draw_the_same_cases():
    runs = [_run_property_test_verbosely({"CI": "true"}) for _ in range(2)]

    headers, cases = [], []
    for run in runs:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        headers.append([line for line in run.stdout.splitlines() if line.startswith("hypothesis: ")])
        # Verbose Hypothesis prints every case it tries ("... check(<arguments>)") before pytest's timed summary.
        cases.append(run.stdout[run.stdout.index("Trying") : run.stdout.rindex("\n=")])
    assert headers[0] == headers[1] == ["hypothesis: profile ci, derandomize=True, max_examples=500, database=none"]
    assert cases[0].count("check(") >= 500
    assert cases[0] == cases[1]


@pytest.mark.slow
def test_local_runs_use_the_exploring_profile():
    run = _run_property_test_verbosely({})

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "hypothesis: profile dev, derandomize=False, max_examples=200, database=local" in run.stdout.splitlines()
