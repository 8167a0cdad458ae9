"""Data: from arrays to the batches a solver trains on.

What belongs here: the value types (:class:`Offset`, :class:`Batch`, ...), datasets
that hold one recording on a device (:class:`TensorDataset`, several in a
:class:`DatasetCollection`), samplers that draw reference/positive/negative indices
with a seeded ``torch.Generator`` (:mod:`.samplers`, nearest labels in
:mod:`.neighbors`), loaders that turn indices into batches (:mod:`.single_session`,
:mod:`.multi_session`), time splits (:mod:`.splits`) and reading files into arrays
(:mod:`.load`). No models, no training, no estimator.

Extending: a new sampling scheme is a sampler in :mod:`.samplers` plus a
:class:`Loader` subclass whose ``_build_sampler()`` returns it (see
:class:`ContinuousDataLoader`); a new file format is a reader function added to
the suffix table ``READERS`` in :mod:`._formats` (what ``load_data`` dispatches on).
Aligning streams recorded on other clocks (spike binning, pose gaps) is
:mod:`cebra_pipe.recordings`' job; the readers call it.
"""

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
