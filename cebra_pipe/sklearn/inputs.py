"""Validation of the estimator's inputs and routing of labels by dtype.

Float label arrays are continuous (concatenated column-wise); one 1-D integer
array is discrete. A multi-session fit takes a list of recordings and, per label,
a list with one array per session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

# A 1-D float label with this few distinct whole-number values was almost surely
# meant as categories.
_MAX_CATEGORIES_IN_FLOAT = 16


@dataclass
class SessionData:
    """One validated recording: neural ``(time, neurons)``, labels or None."""

    neural: np.ndarray
    continuous: np.ndarray | None = None
    discrete: np.ndarray | None = None

    @property
    def label_kind(self) -> str:
        """"time", "continuous", "discrete" or "mixed"."""
        kinds = {(False, False): "time", (True, False): "continuous",
                 (False, True): "discrete", (True, True): "mixed"}
        return kinds[(self.continuous is not None, self.discrete is not None)]


def as_array(data, name: str) -> np.ndarray:
    """``data`` (numpy, torch, pandas or nested lists) as a numeric numpy array."""
    if data is None:
        raise TypeError(f"{name} is None; expected an array of numbers.")
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if scipy.sparse.issparse(data):
        raise TypeError(f"{name} is a sparse matrix ({type(data).__name__}); sparse input is "
                        f"not supported, pass dense data ({name}.toarray()).")
    array = np.asarray(data)
    if array.dtype == object:  # e.g. numbers in an object column: infer their type
        inferred = np.asarray(array.tolist())
        if inferred.dtype == bool or np.issubdtype(inferred.dtype, np.number):
            array = inferred
        else:
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError) as error:
                raise TypeError(f"{name} must be numeric: {error}") from None
    if array.dtype == bool:
        array = array.astype(np.int64)
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name}: Complex data not supported (dtype {array.dtype}); CEBRA "
                         "needs real-valued data.")
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}.")
    return array


def check_neural(data, name: str = "X") -> np.ndarray:
    """A finite ``(time, neurons)`` float32 array with both dimensions > 0."""
    array = as_array(data, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (time, neurons), got shape {array.shape}. "
                         f"Reshape your data: {name}.reshape(-1, 1) for one neuron, "
                         f"{name}.reshape(1, -1) for one time step.")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={array.shape}) while a minimum "
                         "of 1 is required.")
    if array.shape[1] == 0:
        raise ValueError(f"{name} is empty: 0 feature(s) (shape={array.shape}) while a minimum "
                         "of 1 is required.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values "
                         f"({int((~np.isfinite(array)).sum())} entries).")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_label(label, name: str, length: int) -> np.ndarray:
    array = as_array(label, name)
    if array.ndim == 0 or array.ndim > 2:
        raise ValueError(f"{name} must be 1-D or 2-D (time,) / (time, dims), got shape "
                         f"{array.shape}.")
    if array.shape[0] != length:
        raise ValueError(f"{name} has {array.shape[0]} samples but the neural data has "
                         f"{length}; they must have the same length.")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def _looks_categorical(array: np.ndarray) -> bool:
    return (array.ndim == 1 and np.issubdtype(array.dtype, np.floating)
            and np.array_equal(array, np.round(array))
            and len(np.unique(array)) <= _MAX_CATEGORIES_IN_FLOAT)


def split_labels(neural: np.ndarray, labels: tuple, prefix: str = "y") -> SessionData:
    """Route label arrays by dtype into continuous and discrete labels."""
    continuous, discrete = [], []
    for i, label in enumerate(labels):
        name = f"{prefix}[{i}]"
        array = _check_label(label, name, len(neural))
        if np.issubdtype(array.dtype, np.integer):
            if array.ndim == 2 and array.shape[1] == 1:
                array = array[:, 0]
            if array.ndim != 1:
                raise ValueError(f"{name} is an integer (discrete) label of shape "
                                 f"{array.shape}; discrete labels must be 1-D (time,).")
            discrete.append(array.astype(np.int64))
        elif _looks_categorical(array):
            values = np.unique(array)
            raise ValueError(
                f"{name} is a float array whose values are all whole numbers "
                f"({values[:8].tolist()}{'...' if len(values) > 8 else ''}): it looks like "
                "discrete categories stored as floats, which would be used as a continuous "
                f"label. Pass {name}.astype(int) to train on categories, or "
                f"{name}.reshape(-1, 1) to use it as a continuous label on purpose.")
        else:
            continuous.append(array.reshape(len(array), -1).astype(np.float32))
    if len(discrete) > 1:
        raise ValueError(f"Got {len(discrete)} discrete (integer) label arrays; at most one "
                         "is supported. Combine them into one categorical label.")
    return SessionData(neural=neural,
                       continuous=np.concatenate(continuous, 1) if continuous else None,
                       discrete=discrete[0] if discrete else None)


def is_multisession(X) -> bool:
    """A list/tuple of recordings (rather than one 2-D array)."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(
        np.ndim(x) == 2 or (isinstance(x, torch.Tensor) and x.dim() == 2) for x in X)


def check_sessions(X, labels: tuple) -> list[SessionData]:
    """Validate a multi-session fit: ``X`` a list, each label a list per session."""
    sessions = [check_neural(x, f"X[{i}]") for i, x in enumerate(X)]
    per_session: list[list] = [[] for _ in sessions]
    for j, label in enumerate(labels):
        if not isinstance(label, (list, tuple)):
            raise ValueError(f"Multi-session training: label argument {j} must be a list "
                             f"with one array per session ({len(sessions)}), got "
                             f"{type(label).__name__}.")
        if len(label) != len(sessions):
            raise ValueError(f"Multi-session training: {len(sessions)} sessions but label "
                             f"argument {j} has {len(label)} entries.")
        for i, entry in enumerate(label):
            per_session[i].append(entry)
    data = [split_labels(x, tuple(y), prefix=f"y[session {i}]")
            for i, (x, y) in enumerate(zip(sessions, per_session))]
    kinds = {d.label_kind for d in data}
    if len(kinds) > 1:
        raise ValueError(f"All sessions must have the same kind of labels, got {sorted(kinds)}.")
    if kinds == {"mixed"}:
        raise ValueError("Multi-session training supports one set of continuous labels or "
                         "one discrete label, not both.")
    dims = {d.continuous.shape[1] for d in data if d.continuous is not None}
    if len(dims) > 1:
        raise ValueError(f"Continuous labels must have the same number of columns in every "
                         f"session, got {sorted(dims)}.")
    return data
