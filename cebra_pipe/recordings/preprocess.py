"""Preprocessing steps applied to a stream once it is on the session's time base.

Steps are registered by name (``@register("name")``) and declared per stream in the
config as a list of names or ``{name: {params}}`` mappings, e.g.
``[sqrt, zscore]`` for spike counts or ``[{smooth: {sigma_s: 0.1}}]`` for a label.
Each step works within segments (stretches of adjacent bins), so nothing leaks across
a seam.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cebra_pipe.recordings.errors import AlignmentError
from cebra_pipe.registry import Registry

_REGISTRY = Registry("preprocessing step")
register = _REGISTRY.register
get_options = _REGISTRY.get_options


@register("zscore")
def zscore(values: np.ndarray, segment: np.ndarray, bin_size: float) -> np.ndarray:
    """Per-column z-score over the whole session (constant columns become 0).

    values : (time, d); segment : (time,) segment id; bin_size : seconds.
    """
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    return (values - mean) / np.where(std > 0, std, 1.0)


@register("sqrt")
def sqrt(values: np.ndarray, segment: np.ndarray, bin_size: float) -> np.ndarray:
    """Square root, the variance-stabilising transform of Poisson counts."""
    if (values < 0).any():
        raise AlignmentError("preprocessing 'sqrt' needs non-negative values (counts).")
    return np.sqrt(values)


@register("smooth")
def smooth(values: np.ndarray, segment: np.ndarray, bin_size: float, sigma_s: float,
           period: float | None = None) -> np.ndarray:
    """Gaussian smoothing in time with standard deviation ``sigma_s`` seconds.

    Each segment is smoothed on its own (edges reflect), so bins on either side of a
    seam do not mix. Circular values (``period``) are smoothed on the unwrapped angle.
    """
    from scipy.ndimage import gaussian_filter1d

    if not sigma_s > 0:
        raise AlignmentError(f"preprocessing 'smooth': sigma_s must be positive seconds, got "
                             f"{sigma_s!r}.")
    out = np.array(values, dtype=np.float64)
    for seg in np.unique(segment):
        rows = segment == seg
        block = out[rows]
        if period:
            block = np.unwrap(block, period=period, axis=0)
        block = gaussian_filter1d(block, sigma=sigma_s / bin_size, axis=0, mode="nearest")
        if period:
            low = np.where(values.min(axis=0) < 0, -period / 2, 0.0)
            block = np.mod(block - low, period) + low
        out[rows] = block
    return out


@register("direction")
def direction(values: np.ndarray, segment: np.ndarray, bin_size: float) -> np.ndarray:
    """Direction of movement of column 0: 0 while it increases (or holds), 1 while it
    decreases; the slope is taken within each segment. Smooth first for noisy tracks.

    Returns (time, 1), for a discrete label such as running direction on a track.
    """
    out = np.zeros((len(values), 1))
    for seg in np.unique(segment):
        rows = np.flatnonzero(segment == seg)
        if len(rows) > 1:
            out[rows, 0] = np.gradient(values[rows, 0]) < 0
    return out


def parse_steps(steps: Sequence[Any] | None, where: str) -> list[tuple[str, dict[str, Any]]]:
    """``[name | {name: params}]`` -> ``[(name, params)]``; unknown names raise."""
    parsed: list[tuple[str, dict[str, Any]]] = []
    for step in steps or ():
        if isinstance(step, str):
            name, params = step, {}
        elif isinstance(step, Mapping) and len(step) == 1:
            name, params = next(iter(step.items()))
            params = dict(params or {})
        else:
            raise AlignmentError(f"{where}: a preprocessing step is a name or a one-key "
                                 f"mapping {{name: {{params}}}}, got {step!r}.")
        if not _REGISTRY.is_registered(name):
            raise AlignmentError(f"{where}: unknown preprocessing step {name!r}; registered: "
                                 f"{sorted(get_options())}.")
        parsed.append((name, params))
    return parsed


def apply_steps(values: np.ndarray, steps: Sequence[tuple[str, Mapping[str, Any]]],
                segment: np.ndarray, bin_size: float, where: str) -> np.ndarray:
    """Apply parsed steps in order. values : (time, d) -> (time, d) float64."""
    out = np.asarray(values, dtype=np.float64)
    out = out[:, None] if out.ndim == 1 else out
    for name, params in steps:
        try:
            out = _REGISTRY.get(name)(out, segment, bin_size, **params)
        except TypeError as err:
            raise AlignmentError(f"{where}: bad parameters {dict(params)} for preprocessing "
                                 f"step {name!r}: {err}") from None
        except AlignmentError as err:
            raise AlignmentError(f"{where}: {err}") from None
    return out
