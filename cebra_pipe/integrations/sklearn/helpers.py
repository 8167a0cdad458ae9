"""Aligning and averaging embeddings of several models or sessions.

Embeddings of different runs are identical only up to a linear map (rotation, for
unit-norm embeddings). :func:`align_embeddings` maps each embedding onto the first
one with a least-squares linear map fitted on label-binned means (so sessions of
different lengths and sampling can be aligned); :func:`ensemble_embeddings`
averages the aligned embeddings of runs over the same samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn.linear_model
import torch

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
    """Map every embedding linearly onto the first, matched on binned labels.

    Parameters
    ----------
    embeddings : list of (time_i, dims) arrays or tensors
    labels : list of (time_i,) or (time_i, 1) continuous labels, one per embedding
    normalize : project the embeddings onto the unit sphere before aligning
    n_bins : label bins over the range the labels share

    Returns
    -------
    list of (time_i, dims) arrays; the first is the reference itself.
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
        if e.shape[1] != arrays[0].shape[1]:
            raise ValueError(f"embeddings[{i}] has {e.shape[1]} dims, embeddings[0] has "
                             f"{arrays[0].shape[1]}.")
    if normalize:
        arrays = [_unit_rows(a) for a in arrays]
    low = max(float(y.min()) for y in targets)
    high = min(float(y.max()) for y in targets)
    if not high > low:
        raise ValueError("The label ranges of the embeddings do not overlap: nothing to "
                         "align on.")
    edges = np.linspace(low, high, n_bins + 1)
    reference, ref_filled = _binned_means(arrays[0], targets[0], edges)
    aligned = [arrays[0]]
    for i, (array, y) in enumerate(zip(arrays[1:], targets[1:]), start=1):
        means, filled = _binned_means(array, y, edges)
        shared = filled & ref_filled
        if shared.sum() < 2:
            raise ValueError(f"embeddings[{i}] shares fewer than 2 filled label bins with "
                             f"embeddings[0]; use fewer bins (n_bins={n_bins}).")
        source = means[shared[filled]]
        target = reference[shared[ref_filled]]
        regression = sklearn.linear_model.LinearRegression().fit(source, target)
        aligned.append(regression.predict(array))
    return aligned


def ensemble_embeddings(embeddings: list[Any], labels: list[Any] | None = None,
                        post_norm: bool = False, n_bins: int = 100) -> np.ndarray:
    """Average several embeddings of the same samples after aligning them.

    Parameters
    ----------
    embeddings : list of (time, dims) arrays of the same recording (e.g. seeds)
    labels : list of (time,) continuous labels to align on; by default the time index
    post_norm : project the average onto the unit sphere
    n_bins : label bins for :func:`align_embeddings`

    Returns
    -------
    (time, dims) array.
    """
    if not isinstance(embeddings, (list, tuple)) or len(embeddings) < 1:
        raise ValueError("embeddings must be a non-empty list of (time, dims) arrays.")
    lengths = {len(e) for e in embeddings}
    if len(lengths) != 1:
        raise ValueError(f"ensemble_embeddings needs embeddings of the same samples, got "
                         f"lengths {sorted(lengths)}; use align_embeddings for sessions.")
    if labels is None:
        labels = [np.arange(lengths.pop(), dtype=np.float64)] * len(embeddings)
    average = np.mean(align_embeddings(embeddings, labels, n_bins=n_bins), axis=0)
    return _unit_rows(average) if post_norm else average


__all__ = ["align_embeddings", "ensemble_embeddings"]
