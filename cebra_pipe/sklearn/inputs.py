"""Validation of the estimator's inputs and routing of labels by dtype.

Float label arrays are continuous (concatenated column-wise); one 1-D integer
array is discrete. A multi-session fit takes a list of recordings and, per label,
a list with one array per session. Segment ids mark seams (trial or session-part
boundaries) that no window and no positive may cross; trial-structured input
``(trials, time, neurons)`` is flattened with one segment per trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import warnings

import numpy as np
import scipy.sparse
import torch

# A 1-D float label with this few distinct whole-number values was almost surely
# meant as categories.
_MAX_CATEGORIES_IN_FLOAT = 16


@dataclass
class SessionData:
    """One validated recording: neural ``(time, neurons)``, labels, segment ids or None.

    ``segments_name`` is the argument the segment ids came from (for messages).
    """

    neural: np.ndarray
    continuous: np.ndarray | None = None
    discrete: np.ndarray | None = None
    segments: np.ndarray | None = None
    segments_name: str = "segments"

    @property
    def label_kind(self) -> str:
        """"time", "continuous", "discrete" or "mixed"."""
        return LABEL_KINDS[(self.continuous is not None, self.discrete is not None)]


#: Kind of a recording's labels from (has continuous labels, has discrete labels).
LABEL_KINDS = {(False, False): "time", (True, False): "continuous",
               (False, True): "discrete", (True, True): "mixed"}


def is_discrete_label(label: Any) -> bool:
    """Whether a label array holds categories: integers are discrete, other numbers
    continuous (the rule ``fit`` routes labels by)."""
    return bool(np.issubdtype(np.asarray(label).dtype, np.integer))


def as_array(data, name: str) -> np.ndarray:
    """``data`` (numpy, torch, pandas or nested lists) as a numeric numpy array."""
    if data is None:
        raise TypeError(f"{name} is None; expected an array of numbers.")
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if scipy.sparse.issparse(data):
        raise TypeError(f"{name} is a sparse matrix ({type(data).__name__}); sparse input is "
                        f"not supported, pass dense data ({name}.toarray()).")
    try:
        array = np.asarray(data)
    except ValueError as error:  # nested lists of different lengths
        raise ValueError(f"{name} is ragged: its rows have different lengths, so it is not a "
                         f"rectangular array ({str(error).splitlines()[0]}).") from None
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
    _check_float32_range(array, name)
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_float32_range(array: np.ndarray, name: str) -> None:
    """Finite values too large for float32 (the model's precision) would become inf."""
    if array.dtype.itemsize > 4 or array.dtype.kind in "iu":
        peak, limit = float(np.abs(array).max()), float(np.finfo(np.float32).max)
        if peak > limit:
            raise ValueError(f"{name} has values up to {peak:.3g}, beyond the float32 range "
                             f"(+-{limit:.3g}) the model computes in; "
                             "rescale it (e.g. z-score each neuron).")


def _check_label(label, name: str, length: int) -> np.ndarray:
    # "Invalid labels" / "Invalid number of samples" lead the messages, as in the
    # reference's, so that code matching its errors keeps working.
    try:
        array = as_array(label, name)
    except ValueError as error:
        hint = (" A list of label arrays is read as one per session, which needs X as a "
                "list of sessions too." if isinstance(label, (list, tuple)) else "")
        raise ValueError(f"Invalid labels: {error}{hint}") from None
    if array.ndim == 0 or array.ndim > 2:
        raise ValueError(f"{name} must be 1-D or 2-D (time,) / (time, dims), got shape "
                         f"{array.shape}.")
    if array.shape[0] != length:
        raise ValueError(f"Invalid number of samples: {name} has {array.shape[0]} samples but "
                         f"the neural data has {length} ({name} has shape {array.shape}); "
                         "they must have the same length.")
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
        if is_discrete_label(array):
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


def check_segments(segments, length: int, name: str = "segments") -> np.ndarray | None:
    """Segment ids ``(time,)`` int64 (``None`` stays ``None``).

    A seam lies between consecutive samples whose ids differ; ids need not be sorted
    or unique per run.
    """
    if segments is None:
        return None
    array = as_array(segments, name)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer segment ids (e.g. trial numbers), got "
                        f"dtype {array.dtype}; pass {name}.astype(int) if the values are "
                        "whole numbers.")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (time,), got shape {array.shape}.")
    if len(array) != length:
        raise ValueError(f"{name} has {len(array)} samples but the neural data has {length}; "
                         "they must have the same length.")
    return array.astype(np.int64)


def segment_lengths(segments: np.ndarray) -> np.ndarray:
    """Lengths ``(runs,)`` of the runs of equal ids in ``segments (time,)``."""
    edges = np.flatnonzero(np.diff(segments)) + 1
    return np.diff(np.concatenate([[0], edges, [len(segments)]]))


def segment_bounds(segments: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of equal ids in ``segments (time,)``."""
    lengths = segment_lengths(segments)
    stops = np.cumsum(lengths)
    return list(zip((stops - lengths).tolist(), stops.tolist()))


def check_segment_coverage(segments: np.ndarray | None, receptive_field: int,
                           name: str = "segments") -> None:
    """Warn about segments shorter than the model's receptive field (their samples never
    enter a window); raise if no segment is long enough."""
    if segments is None:
        return
    lengths = segment_lengths(segments)
    short = lengths < receptive_field
    if short.all():
        raise ValueError(f"{name}: every one of the {len(lengths)} segments is shorter than "
                         f"the model's receptive field of {receptive_field} samples (longest: "
                         f"{int(lengths.max())}), so no sample can be used without crossing a "
                         "seam. Use longer segments or a model with a smaller receptive field.")
    if short.any():
        warnings.warn(f"{name}: {int(short.sum())} of {len(lengths)} segments are shorter than "
                      f"the model's receptive field of {receptive_field} samples; their "
                      f"{int(lengths[short].sum())} samples are not used for training.",
                      UserWarning, stacklevel=4)


def flatten_trials(X, labels: tuple, name: str = "X",
                   prefix: str = "y") -> tuple[np.ndarray, tuple, np.ndarray]:
    """Concatenate trials of ``X (trials, time, neurons)`` and of each label ``(trials,
    time[, dims])``; returns ``(neural (trials*time, neurons), labels, segments)`` with
    one segment id per trial."""
    array = as_array(X, name)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name} must be 3-D (trials, time, neurons) with all sizes > 0 for "
                         f"trial-structured input, got shape {array.shape}.")
    trials, steps = array.shape[:2]
    flat = []
    for i, label in enumerate(labels):
        label = as_array(label, f"{prefix}[{i}]")
        if label.shape[:2] != (trials, steps) or label.ndim > 3:
            raise ValueError(f"{prefix}[{i}] has shape {label.shape}, but {name} holds "
                             f"{trials} trials of {steps} time steps: trial-structured labels "
                             "must be (trials, time) or (trials, time, dims).")
        flat.append(label.reshape(trials * steps, *label.shape[2:]))
    segments = np.repeat(np.arange(trials, dtype=np.int64), steps)
    return array.reshape(trials * steps, array.shape[2]), tuple(flat), segments


def check_session(X, labels: tuple, segments=None, name: str = "X", prefix: str = "y",
                  segments_name: str = "segments") -> SessionData:
    """Validate one recording ``(time, neurons)`` or trials ``(trials, time, neurons)``,
    its labels and segment ids."""
    X = as_array(X, name)
    if X.ndim == 3:
        if segments is not None:
            raise ValueError(f"{segments_name} was given with trial-structured {name} "
                             f"(trials, time, neurons), where each trial is one segment; "
                             f"pass {name} as (time, neurons) to give segment ids.")
        X, labels, segments = flatten_trials(X, labels, name, prefix)
        segments_name = f"{name} (trials)"
    neural = check_neural(X, name)
    session = split_labels(neural, labels, prefix=prefix)
    session.segments = check_segments(segments, len(neural), segments_name)
    session.segments_name = segments_name
    return session


def is_multisession(X) -> bool:
    """A list/tuple of recordings (rather than one array): each ``(time, neurons)`` or
    ``(trials, time, neurons)``."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(
        np.ndim(x) in (2, 3) for x in X)


def check_sessions(X, labels: tuple, segments=None) -> list[SessionData]:
    """Validate a multi-session fit: ``X`` a list, each label and ``segments`` (if given)
    a list per session."""
    if segments is not None and (not isinstance(segments, (list, tuple))
                                 or len(segments) != len(X)):
        count = f" of {len(segments)}" if isinstance(segments, (list, tuple)) else ""
        raise ValueError(f"Multi-session training: segments must be a list with one (time,) "
                         f"array (or None) per session ({len(X)}), got "
                         f"{type(segments).__name__}{count}.")
    per_session: list[list] = [[] for _ in X]
    for j, label in enumerate(labels):
        if not isinstance(label, (list, tuple)):
            raise ValueError(f"Invalid number of sessions: label argument {j} must be a list "
                             f"with one array per session ({len(X)}), got "
                             f"{type(label).__name__}.")
        if len(label) != len(X):
            raise ValueError(f"Invalid number of sessions: {len(X)} sessions but label "
                             f"argument {j} has {len(label)} entries.")
        for i, entry in enumerate(label):
            per_session[i].append(entry)
    data = [check_session(x, tuple(y), None if segments is None else segments[i],
                          name=f"X[{i}]", prefix=f"y[session {i}]",
                          segments_name=f"segments[{i}]")
            for i, (x, y) in enumerate(zip(X, per_session))]
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
