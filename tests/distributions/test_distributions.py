"""Tests of ``cebra_pipe.distributions``: index-level priors and conditionals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cebra_pipe.distributions as distributions


def _labels(n: int = 600, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    discrete = torch.from_numpy(rng.choice(3, size=n, p=[0.3, 0.1, 0.6]))
    continuous = torch.from_numpy(rng.normal(size=(n, 2))).float()
    return discrete, continuous


def test_discrete_conditional_matches_label_and_priors_differ():
    discrete, _ = _labels(5000)
    dist = distributions.DiscreteUniform(discrete, seed=1)
    reference = dist.sample_prior(3000)
    assert np.allclose(np.bincount(discrete[reference]) / 3000, 1 / 3, atol=0.03)
    positive = dist.sample_conditional(discrete[reference])
    assert torch.equal(discrete[positive], discrete[reference])
    assert not torch.equal(positive, reference)
    empirical = distributions.DiscreteEmpirical(discrete.numpy(), seed=1).sample_prior(3000)
    assert np.allclose(np.bincount(discrete[empirical]) / 3000, [0.3, 0.1, 0.6], atol=0.03)
    with pytest.raises(ValueError, match=r"reference_labels \[7\]"):
        dist.sample_conditional(torch.tensor([7]))


def test_same_seed_same_draws():
    discrete, _ = _labels()
    a, b = (distributions.Discrete(discrete, seed=3) for _ in range(2))
    assert torch.equal(a.sample_uniform(50), b.sample_uniform(50))


def test_indices_find_exact_rows_and_respect_the_class():
    discrete, continuous = _labels()
    torch.testing.assert_close(distributions.ContinuousIndex(continuous).search(
        continuous[:10]), torch.arange(10))
    found = distributions.ConditionalIndex(discrete, continuous).search(
        continuous[:10] + 0.5, discrete[:10])
    assert torch.equal(discrete[found], discrete[:10])
    distance = distributions.DistanceMatrix(continuous)(continuous[:5])
    assert distance.shape == (600, 5)
    assert torch.equal(distance.argmin(0), torch.arange(5))


@pytest.mark.parametrize("time_offset", [1, 7])
def test_time_contrastive(time_offset):
    dist = distributions.TimeContrastive(torch.zeros(100, 1), time_offset=time_offset, seed=0)
    reference = dist.sample_prior(500)
    assert int(reference.max()) < 100 - time_offset
    assert torch.equal(dist.sample_conditional(reference) - reference,
                       torch.full((500,), time_offset))
    with pytest.raises(ValueError, match="time_offset"):
        distributions.TimeContrastive(torch.zeros(5, 1), time_offset=5)


def test_time_delta_positives_stay_within_one_step_of_behaviour():
    position = torch.arange(200, dtype=torch.float32)[:, None] * 2.0  # 2 units per step
    dist = distributions.TimedeltaDistribution(position, seed=0)
    reference = dist.sample_prior(100)
    positive = dist.sample_conditional(reference)
    assert torch.all((position[positive] - position[reference]).abs() <= 2.0)
    assert not torch.equal(positive, reference)


def test_delta_normal_spread_is_delta():
    labels = torch.rand(50_000, 3)
    dist = distributions.DeltaNormalDistribution(labels, delta=0.02, seed=0)
    reference = dist.sample_prior(2000)
    diff = labels[dist.sample_conditional(reference)] - labels[reference]
    assert abs(float(diff.std()) - 0.02) < 0.004
    with pytest.raises(ValueError, match="delta"):
        distributions.DeltaNormalDistribution(labels, delta=0.0)
    with pytest.raises(ValueError, match="1-D"):
        dist.sample_conditional(reference[:, None])


def test_mixed_keeps_the_discrete_label():
    discrete, continuous = _labels()
    dist = distributions.MixedTimeDeltaDistribution(discrete, continuous, seed=0)
    reference = dist.sample_prior(200)
    positive = dist.sample_conditional(reference)
    assert torch.equal(discrete[positive], discrete[reference])
    assert not torch.equal(positive, reference)
    same = dist.sample_conditional_discrete(discrete[reference])
    assert torch.equal(discrete[same], discrete[reference])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="samples must be a non-empty"):
        distributions.Discrete(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="differ in length"):
        distributions.ConditionalIndex(torch.zeros(3), torch.zeros(4, 1))
