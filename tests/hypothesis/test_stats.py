"""P-values, corrections, cohort sign-flip test and group comparison."""

import numpy as np
import pytest

from cebra_pipe.hypothesis import (adjust_p_values, benjamini_hochberg, compare_groups, holm,
                                   permutation_p_value, sign_flip_test, smallest_p_value)


def test_p_value_on_hand_computed_tables():
    null = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # higher is better: 2 nulls (0.8, 0.9) >= 0.75 -> (1 + 2) / 10
    assert permutation_p_value(0.75, null) == pytest.approx(0.3)
    # ties count as at least as good
    assert permutation_p_value(0.9, null) == pytest.approx(0.2)
    # best possible: 1 / (1 + n)
    assert permutation_p_value(2.0, null) == pytest.approx(0.1) == smallest_p_value(9)
    # errors: lower is better; 3 nulls (0.1, 0.2, 0.3) <= 0.3 -> 4 / 10
    assert permutation_p_value(0.3, null, higher_is_better=False) == pytest.approx(0.4)
    assert permutation_p_value(0.05, null, higher_is_better=False) == pytest.approx(0.1)
    assert permutation_p_value(5.0, null, higher_is_better=False) == pytest.approx(1.0)


def test_p_value_rejects_nan():
    with pytest.raises(ValueError, match="null has 1 NaN"):
        permutation_p_value(0.1, [0.0, np.nan])
    with pytest.raises(ValueError, match="real score must be finite"):
        permutation_p_value(np.nan, [0.0, 1.0])


def test_holm_known_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 x 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> cummax
    expected = [0.03, 0.06, 0.06, 0.02]
    np.testing.assert_allclose(holm(p), expected)
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_bh_known_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 x 4/1, 4/2, 4/3, 4/4 = 0.02, 0.02, 0.04, 0.04
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(adjust_p_values(p, "none"), p)
    with pytest.raises(ValueError, match="unknown correction 'bonferoni'"):
        adjust_p_values(p, "bonferoni")
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        holm([0.2, 1.5])


def test_sign_flip_exact_with_few_animals():
    # 4 positive effects: only the all-positive pattern (of 16) reaches the mean
    assert sign_flip_test([1.0, 2.0, 3.0, 4.0]) == pytest.approx(1 / 16)
    # a mix is not significant
    assert sign_flip_test([1.0, -2.0, 0.5, -0.3]) > 0.3


def test_planted_group_difference_is_found():
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(20):
        a = rng.normal(1.0, 0.5, 8)
        b = rng.normal(0.0, 0.5, 8)
        result = compare_groups(a, b, n_resamples=999, seed=1)
        found += result.p_value < 0.05
        assert result.ci_low < result.difference < result.ci_high
    assert found >= 18  # power ~0.99 for d = 2 with 8 + 8 animals


def test_no_group_difference_found_at_the_nominal_rate():
    rng = np.random.default_rng(1)
    runs = 200
    p = np.array([compare_groups(rng.normal(0, 1, 6), rng.normal(0, 1, 6), n_resamples=499,
                                 seed=i).p_value for i in range(runs)])
    rate = np.mean(p < 0.05)
    # binomial(200, 0.05): mean 10, sd 3.1; a test that over-rejects (or never rejects) fails
    assert 0.01 <= rate <= 0.1
    # and p-values of the null are roughly uniform
    assert 0.35 < np.mean(p < 0.5) < 0.65


def test_compare_groups_effect_size_and_single_animal_groups():
    result = compare_groups([2.0, 3.0, 4.0], [0.0, 1.0, 2.0])
    assert result.difference == pytest.approx(2.0)
    assert result.cohens_d == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 2 animals per group, got 1 and 2"):
        compare_groups([1.0], [0.0, 0.5])
    assert sign_flip_test([0.3]) == 0.5 and sign_flip_test([-0.3]) == 1.0


def test_sign_flip_rejects_at_the_nominal_rate_without_an_effect_and_finds_one():
    rng = np.random.default_rng(2)
    p_null = np.array([sign_flip_test(rng.normal(0, 1, 8)) for _ in range(200)])
    assert 0.01 <= np.mean(p_null < 0.05) <= 0.1  # exact test over 2**8 sign patterns
    p_effect = np.array([sign_flip_test(rng.normal(1.5, 1, 8)) for _ in range(20)])
    assert np.mean(p_effect < 0.05) >= 0.9
