"""Paths and the DefinitionSubstitutions renderer shared by the account workflow tests."""
from __future__ import annotations

import re
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
