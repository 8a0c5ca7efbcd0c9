"""The import layers in .importlinter hold, and an upward import breaks the build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("agentops", "tenants", "budgets", "runs", "escalations")


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
    result = _lint_with(tree, tree / "agentops" / "harness" / "loop.py", "\nfrom escalations import opening as _opening  # noqa\n")
    assert result.returncode != 0
    assert "agentops.harness is not allowed to import escalations" in result.stdout


def test_the_harness_importing_runs_models_breaks_the_build(tree: Path) -> None:
    """The harness reaches runs' tables only through its RunStore interface; no exemption is left."""
    result = _lint_with(tree, tree / "agentops" / "harness" / "lease.py", "\nfrom runs.models import Run as _Run  # noqa\n")
    assert result.returncode != 0
    assert "agentops.harness.lease -> runs.models" in result.stdout


def test_the_tool_registry_importing_a_toolset_back_is_a_cycle(tree: Path) -> None:
    result = _lint_with(tree, tree / "agentops" / "tools" / "registry.py", "\nimport agentops.toolbox.builtin  # noqa\n")
    assert result.returncode != 0
    assert "No cycles are allowed in agentops" in result.stdout
