"""Aligning embeddings of the same variable by rotation, and ensembles of runs.

Two runs on the same data give embeddings that agree up to a rotation (on the unit
sphere). :class:`OrthogonalProcrustesAlignment` finds that rotation
(``scipy.linalg.orthogonal_procrustes``) after matching the samples of two
embeddings by their labels (or time indices); :func:`ensemble_embeddings` rotates
several embeddings onto the first and averages them.
"""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np
import scipy.linalg
import sklearn.neighbors
import torch


def _as_float_2d(array: Any, name: str) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    values = np.asarray(array, dtype=np.float64)
    if values.ndim == 1:  # one feature
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"Invalid {name}: must be 2-D (time, dims), got shape "
                         f"{values.shape}.")
    if len(values) == 0:
        raise ValueError(f"Invalid {name}: it is empty.")
    if not np.isfinite(values).all():
        raise ValueError(f"Invalid {name}: it contains NaN or infinite values.")
    return values


class OrthogonalProcrustesAlignment:
    """The rotation that best maps ``data`` onto ``ref_data`` (least squares).

    Each sample of ``data`` is paired with the ``top_k`` samples of ``ref_data``
    whose labels are nearest to its label (as the reference does); the rotation is
    fitted on these pairs (on ``subsample`` samples of ``data`` when given). Every
    sample to align takes part, whatever the sampling of the reference.

    Parameters
    ----------
    top_k
        Reference samples paired with each sample of ``data``.
    subsample
        Pairs used for the fit (drawn with a fixed seed); all when None.

    Attributes
    ----------
    transform_ : (dims, dims) orthogonal matrix, after :meth:`fit`.
    """

    def __init__(self, top_k: int = 5, subsample: int | None = None):
        self.top_k = top_k
        self.subsample = subsample

    def fit(self, ref_data: Any, data: Any, ref_label: Any = None,
            label: Any = None) -> "OrthogonalProcrustesAlignment":
        """Fit the rotation.

        Parameters
        ----------
        ref_data : (n_ref, dims) reference embedding
        data : (n, dims) embedding to align
        ref_label, label : (n_ref, l) and (n, l) labels to pair samples on; both None
            pairs samples by time index
        """
        ref = _as_float_2d(ref_data, "reference data (ref_data)")
        other = _as_float_2d(data, "data")
        if len(ref) < 2:
            raise ValueError("Invalid reference data (ref_data): a rotation needs at least "
                             "2 samples.")
        if ref.shape[1] != other.shape[1]:
            raise ValueError(f"Invalid data: ref_data and data need the same number of "
                             f"dimensions, got {ref.shape[1]} and {other.shape[1]}.")
        if (ref_label is None) != (label is None):
            raise ValueError("Missing labels: give both ref_label and label, or neither "
                             "(then samples are paired by time).")
        if ref_label is None:
            if len(ref) != len(other):
                raise ValueError(f"Missing labels: ref_data and data have {len(ref)} and "
                                 f"{len(other)} samples, so they cannot be paired by time; "
                                 "pass ref_label and label.")
            ref_label, label = np.arange(len(ref)), np.arange(len(other))
        ref_label = _as_float_2d(ref_label, "ref_label")
        label = _as_float_2d(label, "label")
        for name, values, rows in (("ref_label", ref_label, len(ref)),
                                   ("label", label, len(other))):
            if len(values) != rows:
                raise ValueError(f"Mismatched data and labels: {name} has {len(values)} "
                                 f"samples, its data has {rows}.")
        if ref_label.shape[1] != label.shape[1]:
            raise ValueError(f"Mismatched labels: ref_label and label need the same number "
                             f"of columns, got {ref_label.shape[1]} and {label.shape[1]}.")
        if isinstance(self.top_k, bool) or int(self.top_k) < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}.")
        # The reference may have fewer samples than top_k: use all of them then.
        top_k = min(int(self.top_k), len(ref))
        neighbors = sklearn.neighbors.NearestNeighbors(n_neighbors=top_k).fit(ref_label)
        _, index = neighbors.kneighbors(label)
        # Least squares over the top_k pairs of a sample is least squares against their
        # mean (the cross term sums the pairs), so one row per sample suffices.
        matched = ref[index].mean(axis=1)
        rows = np.arange(len(other))
        if self.subsample is not None:
            if isinstance(self.subsample, bool) or int(self.subsample) < 1:
                raise ValueError(f"subsample must be a positive integer, got "
                                 f"{self.subsample!r}.")
            rows = np.random.default_rng(0).permutation(len(other))[:int(self.subsample)]
        self.transform_ = scipy.linalg.orthogonal_procrustes(other[rows], matched[rows])[0]
        return self

    def transform(self, data: Any) -> np.ndarray:
        """``data (n, dims)`` rotated onto the reference."""
        if not hasattr(self, "transform_"):
            raise ValueError("OrthogonalProcrustesAlignment is not fitted: call fit first.")
        values = _as_float_2d(data, "data")
        if values.shape[1] != len(self.transform_):
            raise ValueError(f"data has {values.shape[1]} dimensions, the alignment was "
                             f"fitted on {len(self.transform_)}.")
        return values @ self.transform_

    def fit_transform(self, ref_data: Any, data: Any, ref_label: Any = None,
                      label: Any = None) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of ``data``."""
        return self.fit(ref_data, data, ref_label, label).transform(data)


def ensemble_embeddings(embeddings: list[Any], labels: list[Any] | None = None,
                        post_norm: bool = False, n_jobs: int = 0) -> np.ndarray:
    """Rotate embeddings of the same samples onto the first and average them.

    Parameters
    ----------
    embeddings : list of (time, dims) arrays or tensors of one recording
    labels : optional list of (time,) labels per embedding to pair samples on
        (:class:`OrthogonalProcrustesAlignment`); by default the time index
    post_norm : project the average onto the unit sphere
    n_jobs : parallel alignments with joblib (0: in this process, -1: all cores)

    Returns
    -------
    (time, dims) array.
    """
    if not isinstance(embeddings, (list, tuple)) or len(embeddings) < 1:
        raise ValueError("embeddings must be a non-empty list of (time, dims) arrays.")
    arrays = [_as_float_2d(e, f"embeddings[{i}]") for i, e in enumerate(embeddings)]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"Inconsistent embeddings: ensemble_embeddings needs embeddings "
                         f"of the same samples and dims, got shapes "
                         f"{[a.shape for a in arrays]}.")
    if labels is None:
        labels = [None] * len(arrays)
    elif not isinstance(labels, (list, tuple)) or len(labels) != len(arrays):
        raise ValueError("Mismatched embeddings and labels: labels must be a list with one "
                         "label array per embedding.")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise ValueError(f"Invalid n_jobs: must be an integer, got {n_jobs!r}.")

    def align(i: int) -> np.ndarray:
        return OrthogonalProcrustesAlignment().fit_transform(arrays[0], arrays[i],
                                                             labels[0], labels[i])

    indices = range(1, len(arrays))
    if n_jobs == 0:
        aligned = [align(i) for i in indices]
    else:
        aligned = joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(align)(i) for i in indices)
    average = np.mean([arrays[0], *aligned], axis=0)
    if post_norm:
        norms = np.linalg.norm(average, axis=1, keepdims=True)
        average = average / np.where(norms == 0, 1, norms)
    return average


__all__ = ["OrthogonalProcrustesAlignment", "ensemble_embeddings"]
