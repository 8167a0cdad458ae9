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
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cebra_pipe.registry import Registry

__all__ = ["register", "get_options", "null_orders", "circular_shift", "permutation"]

_registry = Registry("null kind")
register = _registry.register
get_options = _registry.get_options


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
