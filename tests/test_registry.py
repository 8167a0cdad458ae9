"""Registries: parametrized families listed by template, and what counts as a registry."""

from __future__ import annotations

import types

import cebra_pipe.datasets
import cebra_pipe.models
from cebra_pipe.registry import Registry, is_registry


def _registry() -> Registry:
    registry = Registry("thing")

    @registry.register("plain")
    class Plain:
        pass

    @registry.parametrize("sized-{n}", n=[1, 2, 3])
    class Sized:
        def __init__(self, n):
            self.n = n

    @registry.register("last")
    class Last:
        pass

    return registry


def test_parametrized_family_is_listed_once_by_template():
    registry = _registry()
    assert registry.get_options() == ["plain", "sized-1", "sized-2", "sized-3", "last"]
    assert registry.get_options(expand_parametrized=False) == ["plain", "sized-{n}", "last"]
    assert registry.get_options("sized*", expand_parametrized=False) == ["sized-{n}"]
    assert registry.get_options("*", limit=2, expand_parametrized=False) == ["plain",
                                                                            "sized-{n}"]
    assert registry.init("sized-2").n == 2


def test_is_registry_needs_the_functions_and_their_docs():
    assert is_registry(cebra_pipe.models, check_docs=True)
    assert is_registry(cebra_pipe.datasets, check_docs=True)
    partial = types.SimpleNamespace(register=print, init=print, parametrize=print)
    assert not is_registry(partial)
    undocumented = types.SimpleNamespace(**{name: (lambda: None) for name in
                                            ("register", "parametrize", "init", "get_options")})
    assert is_registry(undocumented) and not is_registry(undocumented, check_docs=True)
