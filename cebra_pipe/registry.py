"""Name -> class registries for models, criteria, samplers, solvers and datasets.

Each concept module owns one :class:`Registry` and re-exports its ``register``,
``init``, ``get_options`` and ``parametrize`` so users extend the library by adding
a decorated class, never by editing a lookup table.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any, Callable


class Registry:
    """A named collection of factories.

    Parameters
    ----------
    kind
        What the registry holds ("model", "solver", ...); used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., Any]] = {}
        self._defaults: dict[str, dict[str, Any]] = {}
        self._templates: dict[str, str] = {}  # name -> template it was parametrized from

    def register(self, name: str, *, override: bool = False, **defaults: Any):
        """Decorator registering ``cls`` under ``name`` (with fixed keyword defaults)."""

        def decorator(cls):
            if name in self._factories and not override:
                raise ValueError(f"{self.kind} {name!r} is already registered; "
                                 "pass override=True to replace it.")
            self._factories[name] = cls
            self._defaults[name] = dict(defaults)
            return cls

        return decorator

    def parametrize(self, template: str, **choices: list[Any]):
        """Register ``cls`` once per value combination, e.g. ``"offset{n}-model"``.

        Each keyword gives the values one template field takes; the chosen values
        are passed to the constructor as keyword arguments.
        """
        keys = list(choices)

        def decorator(cls):
            import itertools

            for values in itertools.product(*(choices[k] for k in keys)):
                kw = dict(zip(keys, values))
                name = template.format(**kw)
                self.register(name, **kw)(cls)
                self._templates[name] = template
            return cls

        return decorator

    def get_options(self, pattern: str = "*", limit: int | None = None, *,
                    expand_parametrized: bool = True) -> list[str]:
        """Registered names matching the glob ``pattern``, at most ``limit`` of them.

        With ``expand_parametrized=False`` a family registered by :meth:`parametrize`
        is listed once, by its template (``"offset{n}-model"``), where its first name was.
        """
        listed = dict.fromkeys(n if expand_parametrized else self._templates.get(n, n)
                               for n in self._factories)
        names = [n for n in listed if fnmatch.fnmatchcase(n, pattern)]
        return names if limit is None else names[:limit]

    def is_registered(self, name: str) -> bool:
        return name in self._factories

    def get(self, name: str):
        """The class registered under ``name``; a ValueError listing close matches otherwise."""
        if name not in self._factories:
            close = difflib.get_close_matches(str(name), list(self._factories), n=5, cutoff=0.5)
            hint = f" Did you mean one of {close}?" if close else ""
            raise ValueError(f"Unknown {self.kind} {name!r}.{hint} "
                             f"Available: {sorted(self._factories)}")
        return self._factories[name]

    def init(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the class registered under ``name``."""
        cls = self.get(name)
        return cls(*args, **{**self._defaults[name], **kwargs})


#: What a module exposing a registry provides (see the module docstring).
REGISTRY_FUNCTIONS = ("register", "parametrize", "init", "get_options")


def is_registry(module: Any, check_docs: bool = False) -> bool:
    """Whether ``module`` exposes a registry's functions (and, if asked, their docstrings)."""
    functions = [getattr(module, name, None) for name in REGISTRY_FUNCTIONS]
    if not all(callable(f) for f in functions):
        return False
    return not check_docs or all(f.__doc__ for f in functions)
