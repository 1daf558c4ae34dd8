"""The reliability table only points at tests that exist."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO


def defined_names(path: str) -> set[str]:
    """``test_x`` and ``Class::test_x`` for every test function and class in a test file."""
    tree = ast.parse((REPO / "tests" / path).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(
                f"{node.name}::{item.name}" for item in node.body if isinstance(item, ast.FunctionDef)
            )
    return names


def test_every_test_named_in_the_reliability_table_exists() -> None:
    table = (REPO / "docs" / "reliability.md").read_text()
    references = re.findall(r"`((?:unit|integration|deployment)/\w+\.py)(?:::([\w:]+))?`", table)
    assert len(references) > 40
    missing = [f"{path}::{name}" for path, name in references if name and name not in defined_names(path)]
    assert missing == []
