"""Ensembles of embeddings of the same samples from several models (e.g. seeds).

Two runs on the same data give embeddings that agree up to a rotation (on the unit
sphere). :func:`ensemble_embeddings` rotates every embedding onto the first with
orthogonal Procrustes (``scipy.linalg.orthogonal_procrustes``) and averages them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import torch


def _as_float_2d(array: Any, name: str) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    values = np.asarray(array, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"{name} must be 2-D (time, dims), got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return values


def ensemble_embeddings(embeddings: list[Any], labels: list[Any] | None = None,
                        post_norm: bool = False) -> np.ndarray:
    """Rotate embeddings of the same samples onto the first and average them.

    Parameters
    ----------
    embeddings : list of (time, dims) arrays or tensors of one recording
    labels : optional list of (time,) sample indices per embedding; rows are first
        put in the order of these indices (for embeddings of shuffled samples)
    post_norm : project the average onto the unit sphere

    Returns
    -------
    (time, dims) array.
    """
    if not isinstance(embeddings, (list, tuple)) or len(embeddings) < 1:
        raise ValueError("embeddings must be a non-empty list of (time, dims) arrays.")
    arrays = [_as_float_2d(e, f"embeddings[{i}]") for i, e in enumerate(embeddings)]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"ensemble_embeddings needs embeddings of the same samples and "
                         f"dims, got shapes {[a.shape for a in arrays]}.")
    if labels is not None:
        if not isinstance(labels, (list, tuple)) or len(labels) != len(arrays):
            raise ValueError("labels must be a list with one index array per embedding.")
        orders = [np.argsort(np.asarray(index).reshape(-1), kind="stable") for index in labels]
        if any(len(order) != len(arrays[0]) for order in orders):
            raise ValueError("each labels entry needs one index per sample.")
        arrays = [a[order] for a, order in zip(arrays, orders)]
    reference = arrays[0]
    aligned = [reference] + [a @ scipy.linalg.orthogonal_procrustes(a, reference)[0]
                             for a in arrays[1:]]
    average = np.mean(aligned, axis=0)
    if post_norm:
        norms = np.linalg.norm(average, axis=1, keepdims=True)
        average = average / np.where(norms == 0, 1, norms)
    return average


__all__ = ["ensemble_embeddings"]
