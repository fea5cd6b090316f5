"""The import rules of docs ARCHITECTURE ("Rules that keep it easy to change"), read from the source (no import):
imports flow one way, collect -> dataset -> train -> {evaluate, adapters} -> serve -> export -> base -> quickstart;
a stage imports another only through its package `__init__`; nothing imports `cli`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "personal_copilot"
LEVELS = {"collect": 1, "dataset": 2, "train": 3, "evaluate": 4, "adapters": 4, "serve": 5, "export": 6}
LEVELS |= {"base": 7, "quickstart": 8}
"""Stages by level; modules outside them (configs, modeling, model_ref, console, errors) are the foundation every
stage may use, and which imports no stage but the location of the embedded base (`personal_copilot.base`)."""


def imports(path: Path) -> list[str]:
    """The personal_copilot modules `path` imports, at any depth of the file (function-level imports too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [name for name in names if name.startswith("personal_copilot.")]


def stage_of(module: str) -> str | None:
    part = module.split(".")[1]
    return part if part in LEVELS else None


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way_through_package_inits(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    own = relative.parts[0] if len(relative.parts) > 1 else None
    for module in imports(path):
        if module == "personal_copilot.cli":
            assert relative.name == "__main__.py", f"{relative} imports cli"
            continue
        stage = stage_of(module)
        if stage is None or stage == own:
            continue
        if own in LEVELS:
            assert LEVELS[stage] < LEVELS[own], f"{relative} ({own}) imports {module}: imports flow the other way"
        elif relative.name != "cli.py" and module != "personal_copilot.base":
            raise AssertionError(f"{relative} (foundation) imports the stage module {module}")
        assert module == f"personal_copilot.{stage}", f"{relative} imports {module}, not through its package"
