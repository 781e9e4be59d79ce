"""Paths and the DefinitionSubstitutions renderer shared by the account workflow tests."""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFINITION_PATH = REPO / "statemachine" / "account_workflow.asl.json"
TEMPLATE_PATH = REPO / "infra" / "account-workflow.yaml"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def render_definition(text: str, substitutions: dict[str, str]) -> str:
    """Fill ${Name} placeholders as CloudFormation's DefinitionSubstitutions does; an unknown name is an error."""

    def fill(match: re.Match) -> str:
        return substitutions[match.group(1)]

    return PLACEHOLDER.sub(fill, text)


def python_tool(name: str) -> str:
    """A console script of this environment: next to sys.executable, else on PATH; fails the test if absent."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    assert found, f"{name} is neither next to {sys.executable} nor on PATH: install the dev extras (make setup)"
    return found
