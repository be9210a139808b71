"""Every third-party module that the code or the tests import comes from a distribution that pyproject.toml declares
(as a dependency or an optional one), so a fresh install has everything it imports."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the check needs to run on one interpreter only

REPO = Path(__file__).resolve().parents[1]
LOCAL = {"models", "feature_store", "warehouse", "assets", "orchestration", "benchmarks", "tests"}
SCANNED = ("orchestration", "assets", "models", "feature_store", "warehouse", "benchmarks", "tests")


def _normalized(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values()
                                               for r in extra)]
    return {_normalized(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requirements}


def _imported() -> dict[str, Path]:
    """Top-level third-party modules imported anywhere in the scanned folders, each with one file importing it."""
    found: dict[str, Path] = {}
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in LOCAL and top not in sys.stdlib_module_names:
                        found.setdefault(top, path.relative_to(REPO))
    return found


def test_every_imported_module_is_declared():
    declared, distributions = _declared(), packages_distributions()
    # A module that is not installed here (an optional extra) must be named like its distribution.
    undeclared = {
        module: str(path) for module, path in _imported().items()
        if not {_normalized(d) for d in distributions.get(module, [module])} & declared
    }
    assert undeclared == {}


def test_the_known_indirect_imports_are_declared():
    # Imported by the code but easy to mistake for something another package brings along.
    assert {"pandas", "pyyaml", "pydantic", "scipy", "matplotlib", "pyarrow", "dagster-pipes"} <= _declared()
