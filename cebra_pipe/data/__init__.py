"""Data: value types, datasets, samplers and loaders (and file loading in ``load``)."""

from cebra_pipe.data import multi_session, samplers, single_session
from cebra_pipe.data.datasets import DatasetCollection, TensorDataset
from cebra_pipe.data.datatypes import Batch, BatchIndex, MultiSessionBatch, Offset

__all__ = ["Batch", "BatchIndex", "DatasetCollection", "MultiSessionBatch", "Offset",
           "TensorDataset", "multi_session", "samplers", "single_session"]


def __getattr__(name: str):
    if name in {"load", "load_data"}:
        from cebra_pipe.data import load
        return load if name == "load" else load.load_data
    raise AttributeError(f"module 'cebra_pipe.data' has no attribute {name!r}")
