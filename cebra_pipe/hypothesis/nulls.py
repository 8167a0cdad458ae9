"""Null label orders: circular shifts in time (default) and sample-wise permutations.

A null is an index array ``order`` of length ``time``: ``labels[order]`` are the labels
the null scores the model against. Circular shifts keep the labels' own time structure
(autocorrelation, dwell times, laps) and only break their alignment with the neural
data, which is the question being asked; a sample-wise permutation also destroys that
structure, so any smooth variable looks "better than chance" against it. The
permutation is kept as a documented, weaker alternative.

With trials (or any segments), each trial's labels rotate inside that trial by their
own offset, so no label crosses a trial boundary.

New kinds are added with ``@register("name")`` on a function
``(num_samples, num_nulls, *, min_shift, trials, rng) -> (num_nulls, num_samples)``.

Time quantities (``min_shift``) are given in samples (an integer) or as a duration
with a unit (``"2 s"``, ``"500 ms"``, ``"1 min"``); :func:`to_samples` converts them
with the session's sample period (its bin size).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from cebra_pipe.registry import Registry

__all__ = ["register", "get_options", "null_orders", "circular_shift", "permutation",
           "parse_duration", "to_samples"]

_registry = Registry("null kind")
register = _registry.register
get_options = _registry.get_options


# unit -> seconds per unit; "samples" has no time base
_UNITS = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "ms": 1e-3, "min": 60.0, "samples": None}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]+)\s*$")


def parse_duration(value: int | str, name: str = "min_shift") -> tuple[float, str]:
    """``(amount, unit)`` of a time quantity: an integer (samples) or ``"<number> <unit>"``
    with unit ``s``, ``ms``, ``min`` or ``samples``.

    Raises
    ------
    ValueError naming ``name`` for anything else (negative, unknown unit, not a number).
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        amount, unit = float(value), "samples"
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None or match.group(2) not in _UNITS:
            raise ValueError(f"{name} must be a number of samples (an integer) or a duration "
                             f"like '2 s', '500 ms', '1 min' or '50 samples', got {value!r}.")
        amount, unit = float(match.group(1)), match.group(2)
    if unit == "samples" and not amount.is_integer():
        raise ValueError(f"{name}: a number of samples must be whole, got {value!r}.")
    if amount < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}.")
    return amount, unit


def to_samples(value: int | str, sample_period: float | None, name: str = "min_shift") -> int:
    """A time quantity in samples (durations rounded up: a minimum shift is never
    shortened).

    Parameters
    ----------
    value : samples (int) or a duration string, see :func:`parse_duration`
    sample_period : seconds per sample of the session (its bin size), or None when the
        session has no time base (then only samples are accepted)
    """
    amount, unit = parse_duration(value, name)
    if unit == "samples":
        return int(amount)
    if sample_period is None:
        raise ValueError(f"{name}={value!r} is a duration but the session has no time base "
                         "(no bin size): give it in samples, or give the sessions' bin size "
                         "(config hypotheses.bin_size for prepared arrays).")
    if not (isinstance(sample_period, (int, float, np.floating)) and math.isfinite(sample_period)
            and sample_period > 0):
        raise ValueError(f"the sample period must be a positive number of seconds, got "
                         f"{sample_period!r}.")
    # The small tolerance keeps e.g. 0.3 s / 0.1 s at 3 samples despite float rounding.
    return int(math.ceil(amount * _UNITS[unit] / float(sample_period) - 1e-9))


def _segments(trials: np.ndarray | None, num_samples: int) -> list[np.ndarray]:
    """Sample indices of each trial, in time order (one segment without trials)."""
    if trials is None:
        return [np.arange(num_samples)]
    trials = np.asarray(trials)
    if trials.shape != (num_samples,):
        raise ValueError(f"trials must be a (time,) array of {num_samples} trial ids, got "
                         f"shape {trials.shape}.")
    if trials.dtype.kind == "f" and not np.isfinite(trials).all():
        raise ValueError("trials contains NaN/inf trial ids.")
    _, inverse = np.unique(trials, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return np.split(order, bounds)


@register("circular_shift")
def circular_shift(num_samples: int, num_nulls: int, *, min_shift: int, trials: np.ndarray | None,
                   rng: np.random.Generator) -> np.ndarray:
    """Orders that rotate each trial's labels by a random offset in
    ``[min_shift, length - min_shift]``.

    Returns
    -------
    (num_nulls, num_samples) int64
    """
    segments = _segments(trials, num_samples)
    usable = [s for s in segments if len(s) > 2 * min_shift]
    if not usable:
        longest = max(len(s) for s in segments)
        raise ValueError(f"min_shift={min_shift} samples is too large: a circular shift needs a "
                         f"trial (or recording) longer than 2 x min_shift, but the longest has "
                         f"{longest} samples; lower min_shift or use the 'permutation' null.")
    orders = np.tile(np.arange(num_samples, dtype=np.int64), (num_nulls, 1))
    # Trials too short to shift by min_shift keep their labels: shifting them less would
    # leave near-aligned labels in the null and make it anti-conservative.
    for segment in usable:
        n = len(segment)
        offsets = rng.integers(min_shift, n - min_shift + 1, size=num_nulls)
        rolled = (np.arange(n)[None, :] - offsets[:, None]) % n
        orders[:, segment] = segment[rolled]
    return orders


@register("permutation")
def permutation(num_samples: int, num_nulls: int, *, min_shift: int, trials: np.ndarray | None,
                rng: np.random.Generator) -> np.ndarray:
    """Sample-wise permutations within each trial (weaker: destroys time structure).

    Returns
    -------
    (num_nulls, num_samples) int64
    """
    orders = np.tile(np.arange(num_samples, dtype=np.int64), (num_nulls, 1))
    for segment in _segments(trials, num_samples):
        orders[:, segment] = segment[rng.permuted(np.tile(np.arange(len(segment)),
                                                          (num_nulls, 1)), axis=1)]
    return orders


def null_orders(kind: str, num_samples: int, num_nulls: int, *, min_shift: int = 0,
                trials: np.ndarray | None = None, seed: int | np.random.Generator = 0
                ) -> np.ndarray:
    """``num_nulls`` null label orders of kind ``kind`` (see the module docstring).

    Parameters
    ----------
    kind : "circular_shift" or "permutation" (or a registered kind)
    num_samples : time steps of the labels
    num_nulls : >= 1
    min_shift : smallest circular shift in samples (>= 1 for circular shifts)
    trials : (time,) trial ids, or None for one segment
    seed : seed or Generator

    Returns
    -------
    (num_nulls, num_samples) int64 orders; ``labels[orders[k]]`` is null ``k``.
    """
    factory: Callable[..., np.ndarray] = _registry.get(kind)
    for name, value, low in (("num_samples", num_samples, 2), ("num_nulls", num_nulls, 1),
                             ("min_shift", min_shift, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if kind == "circular_shift" and min_shift < 1:
        raise ValueError("min_shift must be >= 1 for circular shifts (0 would leave the real "
                         "alignment in the null).")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return factory(int(num_samples), int(num_nulls), min_shift=int(min_shift), trials=trials,
                   rng=rng)
