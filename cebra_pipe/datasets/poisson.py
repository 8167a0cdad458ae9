"""Poisson spiking with an absolute refractory period, for synthetic recordings.

A neuron with free-firing rate ``r`` (spikes per time unit) and refractory period
``d`` fires a renewal process: every inter-spike interval is ``d`` plus an exponential
wait of mean ``1 / r``. With ``d = 0`` spike counts in a window are Poisson
distributed; with ``d > 0`` they are narrower, and the mean rate drops to
``r / (1 + r d)``. Each window starts a fresh process (the first spike comes after
``d`` plus an exponential wait), so windows are independent.

:class:`PoissonNeuronTransform` turns a tensor of rates into spike counts (one count
per entry); :class:`PoissonNeuron` draws many windows of one neuron and returns count
histograms from the simulation, from a Poisson distribution with the same rate, and
from a Poisson distribution fitted to the simulation, to check the sampler against.
Random numbers come from torch's global generator unless a ``generator`` is given.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["spike_counts", "PoissonNeuron", "PoissonNeuronTransform"]


def spike_counts(rates: torch.Tensor, time_interval: float = 1.0,
                 refractory_period: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Spike counts in one window of ``time_interval`` for each entry of ``rates``.

    Parameters
    ----------
    rates : (...) free-firing rates, spikes per time unit, >= 0.
    time_interval : window length in the rates' time unit.
    refractory_period : absolute refractory period in the same unit, >= 0.

    Returns
    -------
    (...) int64 counts.
    """
    rates = torch.as_tensor(rates, dtype=torch.float64)
    _check_nonnegative(time_interval=time_interval, refractory_period=refractory_period)
    if torch.isnan(rates).any() or (rates < 0).any():
        raise ValueError("rates must be non-negative numbers (spikes per time unit), got "
                         f"values from {rates.min().item()} to {rates.max().item()}.")
    flat = rates.reshape(-1)
    counts = torch.zeros(flat.shape, dtype=torch.int64)
    elapsed = torch.zeros(flat.shape, dtype=torch.float64)
    active = flat > 0
    # Draw intervals in blocks sized to cover the expected count plus a few s.d., so
    # that almost every entry is done after one block; the loop finishes the rest.
    expected = float((flat.max() * time_interval).item()) if flat.numel() else 0.0
    block = max(8, math.ceil(expected + 6 * math.sqrt(expected) + 1))
    while active.any():
        index = active.nonzero().squeeze(1)
        waits = torch.empty((len(index), block), dtype=torch.float64).exponential_(
            generator=generator)
        times = elapsed[index, None] + torch.cumsum(
            refractory_period + waits / flat[index, None], dim=1)
        inside = times <= time_interval
        counts[index] += inside.sum(dim=1)
        elapsed[index] = times[:, -1]
        active[index] = inside[:, -1]
    return counts.reshape(rates.shape)


def _check_nonnegative(**values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def _histogram(counts: np.ndarray, range_: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(bins, hist)``: the counts ``range_[0] .. range_[1] - 1`` and how often each occurs."""
    low, high = int(range_[0]), int(range_[1])
    if not 0 <= low < high:
        raise ValueError(f"range_ must be (low, high) with 0 <= low < high, got {range_!r}.")
    hist = np.bincount(np.clip(counts, 0, high), minlength=high + 1)[low:high]
    return np.arange(low, high), hist


class PoissonNeuron:
    """One neuron's spike counts over ``num_repeats`` windows of ``time_interval``.

    Parameters
    ----------
    spike_rate : free-firing rate, spikes per time unit.
    time_interval : window length.
    num_repeats : windows drawn per histogram.
    data_range_sigmas : default histogram range, mean count +- this many s.d.
    """

    def __init__(self, spike_rate: float = 40.0, time_interval: float = 1,
                 num_repeats: int = 10000, data_range_sigmas: float = 10) -> None:
        _check_nonnegative(spike_rate=spike_rate, time_interval=time_interval,
                           data_range_sigmas=data_range_sigmas)
        if isinstance(num_repeats, bool) or not isinstance(num_repeats, (int, np.integer)) \
                or num_repeats < 1:
            raise ValueError(f"num_repeats must be a positive integer, got {num_repeats!r}.")
        self.spike_rate = float(spike_rate)
        self.time_interval = float(time_interval)
        self.num_repeats = int(num_repeats)
        self.data_range_sigmas = float(data_range_sigmas)

    def __repr__(self) -> str:
        return (f"PoissonNeuron(spike_rate={self.spike_rate}, time_interval="
                f"{self.time_interval}, num_repeats={self.num_repeats}, "
                f"data_range_sigmas={self.data_range_sigmas})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PoissonNeuron) and repr(self) == repr(other)

    def _default_range(self, rate: float) -> tuple[int, int]:
        mean = rate * self.time_interval
        return 0, max(1, math.ceil(mean + self.data_range_sigmas * math.sqrt(mean)) + 1)

    def _simulate(self, refractory_period: float) -> np.ndarray:
        rates = torch.full((self.num_repeats,), self.spike_rate, dtype=torch.float64)
        return spike_counts(rates, self.time_interval, refractory_period).numpy()

    def sample_spikes(self, refractory_period: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of simulated spike counts; every window is counted.

        Returns
        -------
        bins : (n,) spike counts 0 .. max; hist : (n,) windows with that count.
        """
        counts = self._simulate(refractory_period)
        return _histogram(counts, (0, max(self._default_range(self.spike_rate)[1],
                                          int(counts.max()) + 1)))

    def sample_poisson(self, spike_rate: float | None = None,
                       range_: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of counts drawn from a Poisson distribution (no refractoriness).

        ``spike_rate`` defaults to the neuron's; counts past ``range_`` fall in its last bin.
        """
        rate = self.spike_rate if spike_rate is None else float(spike_rate)
        _check_nonnegative(spike_rate=rate)
        means = torch.full((self.num_repeats,), rate * self.time_interval, dtype=torch.float64)
        counts = torch.poisson(means).long().numpy()
        return _histogram(counts, range_ or self._default_range(rate))

    def sample_poisson_estimate(self, refractory_period: float = 0.0,
                                range_: tuple[int, int] | None = None
                                ) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of a Poisson distribution fitted (by its mean) to simulated counts."""
        fitted = self._simulate(refractory_period).mean() / self.time_interval
        return self.sample_poisson(spike_rate=fitted, range_=range_)


class PoissonNeuronTransform:
    """Spike counts from rates, one window of unit length per entry.

    Parameters
    ----------
    num_neurons : size of the first axis of the rates given.
    refractory_period : absolute refractory period, in the rates' time unit (one bin).
    """

    def __init__(self, num_neurons: int, refractory_period: float = 0.0):
        if isinstance(num_neurons, bool) or not isinstance(num_neurons, (int, np.integer)) \
                or num_neurons < 1:
            raise ValueError(f"num_neurons must be a positive integer, got {num_neurons!r}.")
        _check_nonnegative(refractory_period=refractory_period)
        self.num_neurons = int(num_neurons)
        self.refractory_period = float(refractory_period)

    def __call__(self, spike_rates: torch.Tensor) -> torch.Tensor:
        """Counts for ``spike_rates : (neurons, trials, time)``, same shape, int64."""
        spike_rates = torch.as_tensor(spike_rates)
        if spike_rates.ndim < 1 or spike_rates.shape[0] != self.num_neurons:
            raise ValueError(f"spike_rates has shape {tuple(spike_rates.shape)}; its first "
                             f"axis must be the {self.num_neurons} neurons.")
        return spike_counts(spike_rates, 1.0, self.refractory_period)
