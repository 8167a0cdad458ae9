"""``import cebra`` (and ``cebra.x.y``) resolved to cebra_pipe, for CEBRA's own tests.

A meta path finder answers every ``cebra``/``cebra.*`` import with the cebra_pipe
module of the same dotted path, registered under the ``cebra`` name as well. Used
only by ``run_contract.py``: the package itself never imports ``cebra``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        """The cebra_pipe module is already executed."""


# CEBRA's private modules that contract test files import at the top. They resolve
# to empty placeholder modules so that the file's public tests can run; the tests
# that use them are deselected (run_contract.INTERNAL_TESTS). cebra_pipe has no
# equivalent and ships none.
PRIVATE_MODULES = frozenset({"cebra.helper", "cebra.integrations.sklearn.dataset",
                             "cebra.data.assets"})


class _PrivatePlaceholderLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = types.ModuleType(spec.name, "Import-only placeholder of a private cebra "
                                             "module (contract test harness).")
        return module

    def exec_module(self, module) -> None:
        """Nothing to run: the module stays empty."""


class CebraAliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``cebra.a.b`` as ``cebra_pipe.a.b``; unknown names fail as usual."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != "cebra" and not fullname.startswith("cebra."):
            return None
        if fullname in PRIVATE_MODULES:
            return importlib.machinery.ModuleSpec(fullname, _PrivatePlaceholderLoader())
        real = "cebra_pipe" + fullname[len("cebra"):]
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real),
                                              is_package=True)


def install() -> None:
    """Put the alias finder first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, CebraAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, CebraAliasFinder())
