"""Permutation p-values, multiple-testing corrections, cohort and group tests.

Every score has a direction: ``higher_is_better`` is False for errors, and the
statistics below orient scores so that "better than the null" is always the tail
being tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["permutation_p_value", "smallest_p_value", "holm", "benjamini_hochberg",
           "adjust_p_values", "CORRECTIONS", "sign_flip_test", "GroupComparison",
           "compare_groups"]


def _finite_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has {int((~np.isfinite(array)).sum())} NaN/inf values.")
    return array


def permutation_p_value(real: float, null: Sequence[float] | np.ndarray,
                        higher_is_better: bool = True) -> float:
    """One-sided permutation p-value ``(1 + #{null at least as good as real}) / (1 + n_null)``.

    Parameters
    ----------
    real : the observed score
    null : (n_null,) scores under the null
    higher_is_better : False for errors (then "at least as good" is ``null <= real``)
    """
    null = _finite_1d(null, "null")
    if not np.isfinite(real):
        raise ValueError(f"real score must be finite, got {real!r}.")
    as_good = null >= real if higher_is_better else null <= real
    return float((1 + np.count_nonzero(as_good)) / (1 + null.size))


def smallest_p_value(num_nulls: int) -> float:
    """The smallest p-value :func:`permutation_p_value` can give with ``num_nulls`` nulls."""
    return 1.0 / (1 + int(num_nulls))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down family-wise correction, in the input order.

    statsmodels has it, but it is not a dependency, and the procedure is four lines:
    sort, multiply the k-th smallest by (m - k), take the running maximum, cap at 1.
    """
    p = _p_array(p_values)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (p.size - np.arange(p.size))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg false-discovery-rate adjusted p-values (scipy's implementation)."""
    from scipy.stats import false_discovery_control

    p = _p_array(p_values)
    return np.asarray(false_discovery_control(p, method="bh"), dtype=np.float64)


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg,
               "none": lambda p: _p_array(p).copy()}


def adjust_p_values(p_values: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values of one family of tests with ``method`` in :data:`CORRECTIONS`."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose one of {sorted(CORRECTIONS)}.")
    return CORRECTIONS[method](p_values)


def _p_array(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    p = _finite_1d(p_values, "p_values")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p_values must lie in [0, 1].")
    return p


def sign_flip_test(effects: Sequence[float] | np.ndarray, *, n_resamples: int = 9999,
                   seed: int = 0) -> float:
    """One-sample sign-flip permutation test that the mean effect is > 0.

    Each animal's effect (oriented so positive = better than its null) keeps its size
    and gets a random sign under the null. With few animals (2**n <= n_resamples)
    every sign pattern is enumerated (exact test).

    Parameters
    ----------
    effects : (animals,) oriented effects

    Returns
    -------
    p-value in (0, 1]
    """
    from scipy.stats import permutation_test

    effects = _finite_1d(effects, "effects")
    if effects.size == 1:
        # scipy needs two observations; one animal has two sign patterns, +e and -e.
        return 0.5 if effects[0] > 0 else 1.0
    result = permutation_test((effects,), np.mean, permutation_type="samples",
                              alternative="greater", n_resamples=n_resamples,
                              vectorized=False, random_state=seed)
    return float(result.pvalue)


@dataclass(frozen=True)
class GroupComparison:
    """Difference between two groups of per-animal effects (``a - b``).

    Attributes
    ----------
    difference : mean(a) - mean(b)
    p_value : two-sided permutation test over animals (group labels shuffled)
    cohens_d : difference / pooled standard deviation (NaN when it is 0 or undefined)
    ci_low, ci_high : bootstrap percentile interval of the difference
    confidence : level of that interval
    """

    difference: float
    p_value: float
    cohens_d: float
    ci_low: float
    ci_high: float
    confidence: float


def _pooled_d(a: np.ndarray, b: np.ndarray) -> float:
    dof = a.size + b.size - 2
    if dof < 1:
        return float("nan")
    pooled = ((a.size - 1) * a.var(ddof=1 if a.size > 1 else 0)
              + (b.size - 1) * b.var(ddof=1 if b.size > 1 else 0)) / dof
    return float((a.mean() - b.mean()) / np.sqrt(pooled)) if pooled > 0 else float("nan")


def compare_groups(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                   n_resamples: int = 9999, confidence: float = 0.95, seed: int = 0
                   ) -> GroupComparison:
    """Permutation test, effect size and bootstrap interval for ``mean(a) - mean(b)``.

    Parameters
    ----------
    a, b : (animals,) per-animal effects of two groups (at least two animals each)
    """
    from scipy.stats import bootstrap, permutation_test

    a, b = _finite_1d(a, "group a effects"), _finite_1d(b, "group b effects")
    if a.size < 2 or b.size < 2:
        raise ValueError(f"comparing groups needs at least 2 animals per group, got {a.size} "
                         f"and {b.size}.")

    def difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    test = permutation_test((a, b), difference, permutation_type="independent",
                            alternative="two-sided", n_resamples=n_resamples,
                            vectorized=True, random_state=seed)
    # Percentile: BCa's jackknife is unstable with a handful of animals per group.
    interval = bootstrap((a, b), difference, n_resamples=n_resamples, vectorized=True,
                         confidence_level=confidence, method="percentile",
                         random_state=seed).confidence_interval
    return GroupComparison(difference=float(difference(a, b)), p_value=float(test.pvalue),
                           cohens_d=_pooled_d(a, b), ci_low=float(interval.low),
                           ci_high=float(interval.high),
                           confidence=float(confidence))
