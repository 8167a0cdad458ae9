"""The scikit-learn layer: the :class:`CEBRA` estimator and ``metrics``."""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name in {"metrics", "estimator"}:
        return importlib.import_module(f"cebra_pipe.sklearn.{name}")
    if name == "CEBRA":
        return importlib.import_module("cebra_pipe.sklearn.estimator").CEBRA
    raise AttributeError(f"module 'cebra_pipe.sklearn' has no attribute {name!r}")
