"""Rules of the package's structure, checked on its source with ``ast``.

* Modules talk through public names: no module calls a private (``_name``) method of
  a class defined in another module, nor imports another module's private names.
* The core (models, data, solver) never imports the estimator, the analysis layer or
  the workflow.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cebra_pipe"
CORE = ("models", "data", "solver")
OUTER = ("cebra_pipe.sklearn", "cebra_pipe.hypothesis", "cebra_pipe.attribution",
         "cebra_pipe.pipeline", "cebra_pipe.grid_search")


@functools.cache
def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in PACKAGE.rglob("*.py")}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_methods(trees: dict[Path, ast.Module]) -> dict[str, set[Path]]:
    """Private method name -> the modules whose classes define it."""
    defined: dict[str, set[Path]] = defaultdict(set)
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                            and _private(item.name):
                        defined[item.name].add(path)
    return defined


def _own_object(node: ast.expr) -> bool:
    """``self``/``cls``/``super()``: a class calling its own (inherited) methods."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
        and node.func.id == "super"


def cross_module_private_calls(trees: dict[Path, ast.Module]) -> list[str]:
    """``file:line`` of every call of another module's classes' private methods."""
    defined = _private_methods(trees)
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            owners = defined.get(name, set())
            if _private(name) and not _own_object(node.func.value) and owners \
                    and path not in owners:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} calls .{name}() "
                             f"of {sorted(str(o.relative_to(PACKAGE)) for o in owners)}")
    return found


def private_imports(trees: dict[Path, ast.Module]) -> list[str]:
    """``from cebra_pipe.x import _name`` anywhere in the package."""
    return [f"{path.relative_to(PACKAGE)}:{node.lineno} imports {alias.name} from {node.module}"
            for path, tree in trees.items() for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cebra_pipe")
            for alias in node.names if _private(alias.name)]


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module name a file imports (top level or inside functions)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_calls_private_methods_of_another_modules_classes():
    assert cross_module_private_calls(_modules()) == []


def test_no_module_imports_private_names_of_another():
    assert private_imports(_modules()) == []


@pytest.mark.parametrize("core", CORE)
def test_core_never_imports_estimator_analysis_or_workflow(core):
    trees = {p: t for p, t in _modules().items() if p.relative_to(PACKAGE).parts[0] == core}
    assert trees, f"no modules found in cebra_pipe/{core}"
    offending = sorted(f"{path.relative_to(PACKAGE)} imports {name}"
                       for path, tree in trees.items() for name in imported_modules(tree)
                       if name.startswith(OUTER) or name in ("cebra_pipe.CEBRA",))
    assert offending == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The checks are not vacuous: a friend call and a core import are found."""
    owner = ast.parse("class A:\n    def _hidden(self):\n        return 1\n")
    caller = ast.parse("from cebra_pipe.x import _helper\n"
                       "def use(a):\n    return a._hidden() + a.visible()\n")
    trees = {PACKAGE / "owner.py": owner, PACKAGE / "caller.py": caller}
    assert cross_module_private_calls(trees) == ["caller.py:3 calls ._hidden() of ['owner.py']"]
    assert private_imports(trees) == ["caller.py:1 imports _helper from cebra_pipe.x"]
    assert "cebra_pipe.pipeline.common" in imported_modules(
        ast.parse("def f():\n    from cebra_pipe.pipeline import common\n"))
