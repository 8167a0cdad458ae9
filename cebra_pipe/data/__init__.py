"""Data: value types, datasets, samplers and loaders (and file loading in ``load``)."""

from __future__ import annotations

import importlib
from typing import Any

# Attributes load on first use (PEP 562): file loading (``load``) and the value types
# need no torch, so the workflow's table steps that read recordings stay torch-free.
_ATTRIBUTES = {
    "DatasetCollection": "cebra_pipe.data.datasets",
    "TensorDataset": "cebra_pipe.data.datasets",
    "Batch": "cebra_pipe.data.datatypes",
    "BatchIndex": "cebra_pipe.data.datatypes",
    "MultiSessionBatch": "cebra_pipe.data.datatypes",
    "Offset": "cebra_pipe.data.datatypes",
    "Loader": "cebra_pipe.data.loaders",
    "ContinuousMultiSessionDataLoader": "cebra_pipe.data.multi_session",
    "DiscreteMultiSessionDataLoader": "cebra_pipe.data.multi_session",
    "ContinuousDataLoader": "cebra_pipe.data.single_session",
    "DiscreteDataLoader": "cebra_pipe.data.single_session",
    "HybridDataLoader": "cebra_pipe.data.single_session",
    "MixedDataLoader": "cebra_pipe.data.single_session",
    "load_data": "cebra_pipe.data.load",
}
_SUBMODULES = {"datasets", "datatypes", "helper", "load", "loaders", "multi_session", "samplers",
               "single_session"}

__all__ = sorted((set(_ATTRIBUTES) - {"load_data"}) | (_SUBMODULES - {"load"}))


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"cebra_pipe.data.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'cebra_pipe.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {"load", "load_data"})
