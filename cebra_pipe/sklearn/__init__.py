"""The scikit-learn layer: the :class:`CEBRA` estimator, ``metrics`` and ``fit_seeds``."""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name in {"metrics", "estimator", "ensemble"}:
        return importlib.import_module(f"cebra_pipe.sklearn.{name}")
    if name == "CEBRA":
        return importlib.import_module("cebra_pipe.sklearn.estimator").CEBRA
    if name in {"fit_seeds", "fit_ensemble"}:
        return getattr(importlib.import_module("cebra_pipe.sklearn.ensemble"), name)
    raise AttributeError(f"module 'cebra_pipe.sklearn' has no attribute {name!r}")
