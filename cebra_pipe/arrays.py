"""Array conversion and checks shared by the analysis functions (numpy only).

Decoders, plots, metrics and the pipeline take embeddings as numpy arrays or torch
tensors; they convert and check them here, so every one of them accepts the same
inputs and names a bad one the same way. Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LabelDtypeError", "LabelShapeError", "check_embedding", "label_column",
           "to_numpy"]


class LabelShapeError(ValueError, NotImplementedError):
    """Labels that are not one value per sample (a ValueError, and the
    NotImplementedError the reference raises for multi-dimensional labels)."""


class LabelDtypeError(TypeError, ValueError):
    """Labels that are not numbers (a TypeError, and the ValueError the reference
    raises for them)."""


def to_numpy(values: Any) -> np.ndarray:
    """``values`` as a numpy array; torch tensors are detached and moved to the CPU."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def check_embedding(embedding: Any, name: str = "embedding") -> np.ndarray:
    """A finite, numeric, non-empty embedding as floats.

    Parameters
    ----------
    embedding : (time, dims)
        Numeric array or torch tensor.
    name
        What the error messages call it (an argument or a file).

    Returns
    -------
    (time, dims) float array.

    Raises
    ------
    ValueError
        Not 2-D, no samples, or NaN/infinite values.
    TypeError
        Not numeric.
    """
    array = to_numpy(embedding)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (time, dims), got shape {array.shape}; "
            f"reshape a single latent with {name}.reshape(-1, 1).")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples).")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}.")
    array = array.astype(float, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} contains NaN or infinite values ({int(bad.sum())} entries).")
    return array


def label_column(values: Any, name: str, num_samples: int, against: str = "the embedding",
                 counted: str = "values") -> np.ndarray:
    """One label per sample, e.g. to colour or align an embedding by.

    Parameters
    ----------
    values : (time,)
        Numeric (or boolean) array or torch tensor. One column: a 2-D array, even
        ``(time, 1)``, is refused (as by the reference) with the column to pass.
    name
        What the error messages call it.
    num_samples
        The samples it must match, those of ``against``.
    counted
        What a length mismatch calls its entries (``values`` or ``samples``).

    Returns
    -------
    (time,) array of the input's dtype.
    """
    # "Invalid <name>" leads the messages, as in the reference's, so that code matching
    # its errors keeps working.
    array = to_numpy(values)
    if array.ndim != 1:
        raise LabelShapeError(f"Invalid {name}: must be 1-D (time,), got shape "
                              f"{array.shape}; pass one column of a multi-dimensional "
                              f"label, e.g. {name}[:, 0].")
    if len(array) != num_samples:
        raise ValueError(f"Invalid {name}: {len(array)} {counted} but {against} has "
                         f"{num_samples} samples.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise LabelDtypeError(f"Invalid {name} dtype: must be numeric, got {array.dtype}.")
    return array
