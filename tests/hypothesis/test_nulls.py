"""Null label orders: circular shifts (within trials) and permutations."""

import numpy as np
import pytest

from cebra_pipe.hypothesis import null_orders, parse_duration, to_samples
from cebra_pipe.hypothesis.nulls import register


def _shift_of(order: np.ndarray) -> int:
    """The rotation r with order[i] == (i - r) % n, asserting the order is one."""
    n = len(order)
    r = (0 - order[0]) % n
    np.testing.assert_array_equal(order, (np.arange(n) - r) % n)
    return int(r)


def test_circular_shifts_respect_min_shift_and_are_rotations():
    orders = null_orders("circular_shift", 100, 300, min_shift=20, seed=1)
    assert orders.shape == (300, 100)
    shifts = np.array([_shift_of(o) for o in orders])
    assert shifts.min() >= 20 and shifts.max() <= 80
    assert len(np.unique(shifts)) > 30  # offsets are drawn, not fixed


def test_circular_shifts_stay_inside_trials():
    # three trials, the middle one not contiguous with itself in id order
    trials = np.array([0] * 40 + [1] * 30 + [2] * 50)
    labels = np.arange(120)
    orders = null_orders("circular_shift", 120, 50, min_shift=5, trials=trials, seed=0)
    for order in orders:
        shifted = labels[order]
        for t in (0, 1, 2):
            inside = trials == t
            # every label stays in its trial, and the trial's labels are rotated
            assert set(shifted[inside]) == set(labels[inside])
            segment = np.flatnonzero(inside)
            local = order[inside] - segment[0]
            r = _shift_of(local)
            assert 5 <= r <= inside.sum() - 5


def test_trials_too_short_for_min_shift_stay_unshifted():
    trials = np.array([0] * 8 + [1] * 60)
    orders = null_orders("circular_shift", 68, 20, min_shift=10, trials=trials, seed=0)
    np.testing.assert_array_equal(orders[:, :8], np.tile(np.arange(8), (20, 1)))
    assert (orders[:, 8:] != np.arange(8, 68)).any(axis=1).all()


def test_permutation_within_trials():
    trials = np.repeat([3, 7], 50)
    orders = null_orders("permutation", 100, 10, trials=trials, seed=0)
    for order in orders:
        assert set(order[:50]) == set(range(50)) and set(order[50:]) == set(range(50, 100))
        assert not np.array_equal(order, np.arange(100))


def test_same_seed_same_orders():
    a = null_orders("circular_shift", 500, 20, min_shift=10, seed=3)
    b = null_orders("circular_shift", 500, 20, min_shift=10, seed=3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "shift"}, "Unknown null kind"),
    ({"min_shift": 0}, "min_shift must be >= 1"),
    ({"min_shift": 60}, "min_shift=60 samples is too large"),
    ({"num_nulls": 0}, "num_nulls must be an integer >= 1"),
    ({"trials": np.zeros(5)}, "trials must be a"),
])
def test_bad_arguments_are_named(kwargs, match):
    args = {"kind": "circular_shift", "num_samples": 100, "num_nulls": 5, "min_shift": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        null_orders(args.pop("kind"), args.pop("num_samples"), args.pop("num_nulls"), **args)


def test_registered_null_kinds_are_usable():
    @register("reverse_test_only", override=True)
    def reverse(num_samples, num_nulls, *, min_shift, trials, rng):
        return np.tile(np.arange(num_samples)[::-1], (num_nulls, 1))

    orders = null_orders("reverse_test_only", 4, 2)
    np.testing.assert_array_equal(orders, [[3, 2, 1, 0], [3, 2, 1, 0]])


@pytest.mark.parametrize("value, period, samples", [
    (50, None, 50),             # samples need no time base
    ("50 samples", None, 50),
    ("2 s", 0.025, 80),         # 2 / 0.025
    ("500 ms", 0.025, 20),
    ("0.3 s", 0.1, 3),          # not 4 through float rounding (0.3 / 0.1 = 2.9999...)
    ("0.31 s", 0.1, 4),         # rounded up: a minimum shift is never shortened
    ("1 min", 0.5, 120),
    ("1e-1 s", 0.025, 4),
])
def test_time_quantities_convert_to_samples(value, period, samples):
    assert to_samples(value, period) == samples


@pytest.mark.parametrize("value, period, match", [
    ("2 s", None, "no time base"),
    ("2 hours", 0.025, "duration like"),
    ("two s", 0.025, "duration like"),
    (True, 0.025, "duration like"),
    ("2.5 samples", None, "must be whole"),
    (-3, None, "must be >= 0"),
    ("2 s", 0.0, "sample period must be a positive"),
])
def test_bad_time_quantities_are_named(value, period, match):
    with pytest.raises(ValueError, match=match) as info:
        to_samples(value, period, "hypotheses.min_shift")
    assert "hypotheses.min_shift" in str(info.value) or "sample period" in str(info.value)


def test_parse_duration_keeps_amount_and_unit():
    assert parse_duration("  1.5 ms ") == (1.5, "ms")
    assert parse_duration(7) == (7.0, "samples")
