"""Poisson spiking with a refractory period (cebra_pipe.datasets.poisson)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cebra_pipe.datasets.poisson import PoissonNeuron, PoissonNeuronTransform, spike_counts


def test_without_refractory_period_counts_are_poisson():
    generator = torch.Generator().manual_seed(0)
    counts = spike_counts(torch.full((20000,), 7.0), 2.0, generator=generator).numpy()
    # Poisson: mean = variance = rate x interval.
    assert counts.mean() == pytest.approx(14.0, rel=0.02)
    assert counts.var() == pytest.approx(14.0, rel=0.05)


def test_refractory_period_lowers_rate_and_variance():
    generator = torch.Generator().manual_seed(1)
    counts = spike_counts(torch.full((20000,), 50.0), 1.0, 0.01, generator=generator).numpy()
    # Renewal process with dead time: rate r / (1 + r d) = 33.3 (minus the initial dead
    # time of each window), variance well below the mean.
    assert 31.5 < counts.mean() < 33.4
    assert counts.var() < 0.5 * counts.mean()


def test_transform_keeps_shape_and_zero_rates_give_no_spikes():
    rates = torch.zeros(3, 4, 5)
    rates[0] = 20.0
    counts = PoissonNeuronTransform(num_neurons=3, refractory_period=0.001)(rates)
    assert counts.shape == rates.shape and counts.dtype == torch.int64
    assert counts[1:].sum() == 0 and counts[0].sum() > 0


def test_neuron_histograms_agree():
    torch.manual_seed(0)
    neuron = PoissonNeuron(spike_rate=12, num_repeats=4000)
    bins, simulated = neuron.sample_spikes()
    assert simulated.sum() == 4000 and len(bins) == len(simulated)
    _, poisson = neuron.sample_poisson(range_=(0, len(bins)))
    _, fitted = neuron.sample_poisson_estimate(range_=(0, len(bins)))
    for hist in (poisson, fitted):
        assert np.abs(hist / hist.sum() - simulated / simulated.sum()).max() < 0.02
    assert (bins * simulated).sum() / 4000 == pytest.approx(12, rel=0.05)


@pytest.mark.parametrize("call, match", [
    (lambda: spike_counts(torch.tensor([1.0, -1.0])), "non-negative"),
    (lambda: spike_counts(torch.tensor([float("nan")])), "non-negative"),
    (lambda: spike_counts(torch.ones(2), refractory_period=-0.1), "refractory_period"),
    (lambda: PoissonNeuron(num_repeats=0), "num_repeats"),
    (lambda: PoissonNeuron().sample_poisson(range_=(5, 2)), "range_"),
    (lambda: PoissonNeuronTransform(2)(torch.ones(3, 4)), "first axis"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
