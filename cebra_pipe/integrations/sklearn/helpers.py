"""Embeddings of several recordings on a common label axis (``align_embeddings``),
and the ensemble of several runs (``ensemble_embeddings``, from
:mod:`cebra_pipe.data.helper`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cebra_pipe.data.helper import ensemble_embeddings
from cebra_pipe.sklearn.inputs import as_array


def _as_2d(array: Any, name: str) -> np.ndarray:
    values = as_array(array.detach().cpu() if isinstance(array, torch.Tensor) else array, name)
    values = values.reshape(len(values), -1).astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return values


def _unit_rows(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms == 0, 1, norms)


def _binned_means(embedding: np.ndarray, labels: np.ndarray,
                  edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean embedding ``(bins, dims)`` per label bin and which bins have samples."""
    bins = np.clip(np.searchsorted(edges, labels[:, 0], side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    sums = np.zeros((len(edges) - 1, embedding.shape[1]))
    np.add.at(sums, bins, embedding)
    filled = counts > 0
    return sums[filled] / counts[filled, None], filled


def align_embeddings(embeddings: list[Any], labels: list[Any], normalize: bool = True,
                     n_bins: int = 100) -> list[np.ndarray]:
    """Put embeddings of different recordings on a common label axis.

    The label range the recordings share is cut into ``n_bins`` equal bins; each
    embedding becomes its mean per bin, over the bins every recording fills. The
    results have the same rows (label bins) and can be compared or regressed onto
    each other, whatever the recordings' lengths and embedding dimensions.

    Parameters
    ----------
    embeddings : list of (time_i, dims_i) arrays or tensors
    labels : list of (time_i,) or (time_i, 1) continuous labels, one per embedding
    normalize : project each sample onto the unit sphere before averaging
    n_bins : label bins over the shared range

    Returns
    -------
    list of (bins, dims_i) arrays, ``bins <= n_bins`` (bins empty in any recording
    are left out).
    """
    if not isinstance(embeddings, (list, tuple)) or len(embeddings) < 1:
        raise ValueError("embeddings must be a non-empty list of (time, dims) arrays.")
    if not isinstance(labels, (list, tuple)) or len(labels) != len(embeddings):
        raise ValueError(f"labels must be a list with one label array per embedding "
                         f"({len(embeddings)}), got {type(labels).__name__}.")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    arrays = [_as_2d(e, f"embeddings[{i}]") for i, e in enumerate(embeddings)]
    targets = [_as_2d(y, f"labels[{i}]") for i, y in enumerate(labels)]
    for i, (e, y) in enumerate(zip(arrays, targets)):
        if len(e) != len(y):
            raise ValueError(f"embeddings[{i}] has {len(e)} samples but labels[{i}] has "
                             f"{len(y)}.")
        if y.shape[1] != 1:
            raise ValueError(f"labels[{i}] must be 1-D (one continuous label), got "
                             f"{y.shape[1]} columns.")
    if normalize:
        arrays = [_unit_rows(a) for a in arrays]
    low = max(float(y.min()) for y in targets)
    high = min(float(y.max()) for y in targets)
    if not high > low:
        raise ValueError("The label ranges of the embeddings do not overlap: nothing to "
                         "align on.")
    edges = np.linspace(low, high, n_bins + 1)
    binned = [_binned_means(a, y, edges) for a, y in zip(arrays, targets)]
    common = np.logical_and.reduce([filled for _, filled in binned])
    if not common.any():
        raise ValueError(f"No label bin has samples of every embedding; use fewer bins "
                         f"(n_bins={n_bins}).")
    return [means[common[filled]] for means, filled in binned]


__all__ = ["align_embeddings", "ensemble_embeddings"]
