"""The import layers in .importlinter hold, and an upward import breaks the build."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("agentops", "tenants", "budgets", "runs")


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=where, capture_output=True, text=True, timeout=120)


def _lint_with(tree: Path, target: Path, line: str) -> subprocess.CompletedProcess[str]:
    """Lint the tree with ``line`` appended to ``target``, then put the file back."""
    kept = target.read_text()
    target.write_text(kept + line)
    try:
        return _lint(tree)
    finally:
        target.write_text(kept)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy(tmp_path_factory.mktemp("layers"))


def test_the_layers_hold_today(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


def test_budgets_importing_runs_services_breaks_the_build(tree: Path) -> None:
    result = _lint_with(tree, tree / "budgets" / "services.py", "\nfrom runs import services as _runs_services  # noqa\n")
    assert result.returncode != 0
    assert "budgets is not allowed to import runs" in result.stdout
    assert "budgets.services -> runs.services" in result.stdout


def test_the_harness_importing_an_app_above_it_breaks_the_build(tree: Path) -> None:
    result = _lint_with(tree, tree / "agentops" / "harness" / "loop.py", "\nfrom agentops.escalations import opening as _opening  # noqa\n")
    assert result.returncode != 0
    assert "agentops.harness is not allowed to import agentops.escalations" in result.stdout


def test_the_harness_importing_runs_models_breaks_the_build(tree: Path) -> None:
    """The harness reaches runs' tables only through its RunStore interface; no exemption is left."""
    result = _lint_with(tree, tree / "agentops" / "harness" / "lease.py", "\nfrom runs.models import Run as _Run  # noqa\n")
    assert result.returncode != 0
    assert "agentops.harness.lease -> runs.models" in result.stdout


def test_the_tool_registry_importing_a_toolset_back_is_a_cycle(tree: Path) -> None:
    result = _lint_with(tree, tree / "agentops" / "tools" / "registry.py", "\nimport agentops.toolbox.builtin  # noqa\n")
    assert result.returncode != 0
    assert "No cycles are allowed in agentops" in result.stdout


def _function_local_imports() -> list[tuple[str, int, bool]]:
    """(file, line, says why) for every import inside a function, outside tests and migrations.

    It says why when the import line has a comment, or the comment heads the block of imports it
    belongs to (the line above the first of them)."""
    found = []
    for name in (*PACKAGES, "dev.py", "manage.py"):
        for path in sorted((ROOT / name).rglob("*.py")) if (ROOT / name).is_dir() else [ROOT / name]:
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            lines = text.splitlines()
            for node in ast.walk(ast.parse(text)):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        first = sub.lineno - 1
                        while first > 0 and lines[first - 1].lstrip().startswith(("import ", "from ")):
                            first -= 1
                        says_why = "#" in lines[sub.lineno - 1] or lines[first - 1].lstrip().startswith("#")
                        found.append((str(path.relative_to(ROOT)), sub.lineno, says_why))
    return sorted(set(found))


def test_few_imports_inside_functions_and_each_says_why() -> None:
    found = _function_local_imports()
    assert len(found) < 20, found
    silent = [(f, n) for f, n, why in found if not why]
    assert silent == []


@pytest.mark.parametrize(("source", "line", "message"), [
    ("runs/models.py", "from agentops.prompts import models as _prompts_models  # noqa", "runs is not allowed to import agentops.prompts"),
    ("agentops/escalations/services.py", "from agentops.prompts import services as _prompts_services  # noqa", "agentops.escalations is not allowed to import agentops.prompts"),
])
def test_runs_and_escalations_importing_prompts_breaks_the_build(tree: Path, source: str, line: str, message: str) -> None:
    target = tree / source
    kept = target.read_text()
    target.write_text(kept + "\n" + line + "\n")
    try:
        result = _lint(tree)
    finally:
        target.write_text(kept)
    assert result.returncode != 0
    assert message in result.stdout
