"""Data: value types, datasets, samplers and loaders (and file loading in ``load``)."""

from cebra_pipe.data import multi_session, samplers, single_session
from cebra_pipe.data.datasets import DatasetCollection, TensorDataset
from cebra_pipe.data.datatypes import Batch, BatchIndex, MultiSessionBatch, Offset
from cebra_pipe.data.loaders import Loader
from cebra_pipe.data.multi_session import (ContinuousMultiSessionDataLoader,
                                           DiscreteMultiSessionDataLoader)
from cebra_pipe.data.single_session import (ContinuousDataLoader, DiscreteDataLoader,
                                            HybridDataLoader, MixedDataLoader)

__all__ = ["Batch", "BatchIndex", "ContinuousDataLoader", "ContinuousMultiSessionDataLoader",
           "DatasetCollection", "DiscreteDataLoader", "DiscreteMultiSessionDataLoader",
           "HybridDataLoader", "Loader", "MixedDataLoader", "MultiSessionBatch", "Offset",
           "TensorDataset", "multi_session", "samplers", "single_session"]


def __getattr__(name: str):
    if name in {"load", "load_data"}:
        from cebra_pipe.data import load
        return load if name == "load" else load.load_data
    raise AttributeError(f"module 'cebra_pipe.data' has no attribute {name!r}")
