"""Nearest-neighbour lookups on labels, over :class:`cebra_pipe.data.neighbors.NearestNeighbors`."""

from __future__ import annotations

import torch

from cebra_pipe.data.neighbors import NearestNeighbors
from cebra_pipe.distributions.base import as_tensor


def _points(values, name: str) -> torch.Tensor:
    points = as_tensor(values, name).float()
    return points[:, None] if points.dim() == 1 else points


class DistanceMatrix:
    """Squared Euclidean distances ``(len(samples), len(query))`` to ``samples (n, d)``."""

    def __init__(self, samples):
        self.samples = _points(samples, "samples")

    def __call__(self, query) -> torch.Tensor:
        return torch.cdist(self.samples, _points(query, "query").to(self.samples)) ** 2


class ContinuousIndex:
    """Index of ``data (n, d)``: :meth:`search` returns the row nearest to each query."""

    def __init__(self, data, seed: int = 0):
        self.data = _points(data, "data")
        self.index = NearestNeighbors(self.data, torch.Generator().manual_seed(seed))

    def search(self, query) -> torch.Tensor:
        """Rows ``(b,)`` nearest to ``query (b, d)`` (ties drawn at random)."""
        return self.index.query(_points(query, "query").to(self.data))


class ConditionalIndex:
    """Nearest ``continuous`` row among the rows with the query's ``discrete`` label."""

    def __init__(self, discrete, continuous, seed: int = 0):
        self.discrete = as_tensor(discrete, "discrete").long()
        self.continuous = _points(continuous, "continuous")
        if len(self.discrete) != len(self.continuous):
            raise ValueError(f"discrete ({len(self.discrete)}) and continuous "
                             f"({len(self.continuous)}) labels differ in length.")
        self.classes: dict[int, tuple[torch.Tensor, ContinuousIndex]] = {}
        for label in torch.unique(self.discrete).tolist():
            rows = torch.nonzero(self.discrete == label)[:, 0]
            self.classes[label] = (rows, ContinuousIndex(self.continuous[rows], seed))

    def search(self, continuous, discrete) -> torch.Tensor:
        """Rows ``(b,)`` nearest to ``continuous (b, d)`` with label ``discrete (b,)``."""
        query = _points(continuous, "continuous").to(self.continuous)
        labels = as_tensor(discrete, "discrete").long().reshape(-1)
        out = torch.empty(len(labels), dtype=torch.long)
        for label in torch.unique(labels).tolist():
            if label not in self.classes:
                raise ValueError(f"discrete label {label} does not occur in the index.")
            rows, index = self.classes[label]
            chosen = labels == label
            out[chosen] = rows[index.search(query[chosen])]
        return out
