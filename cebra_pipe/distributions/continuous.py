"""Distributions over time and continuous labels."""

from __future__ import annotations

import torch

from cebra_pipe.distributions.base import HasGenerator, JointDistribution, as_tensor
from cebra_pipe.distributions.index import ContinuousIndex


class TimeContrastive(JointDistribution, HasGenerator):
    """The positive of reference ``t`` is ``t + time_offset``.

    Parameters
    ----------
    continuous : (time, ...) or None
        Only its length is used (``num_samples`` otherwise).
    """

    def __init__(self, continuous=None, time_offset: int = 1, num_samples: int | None = None,
                 device: str | torch.device = "cpu", seed: int | None = None):
        HasGenerator.__init__(self, device=device, seed=seed)
        if continuous is None and num_samples is None:
            raise ValueError("TimeContrastive needs continuous or num_samples.")
        self.num_samples = len(continuous) if continuous is not None else int(num_samples)
        self.time_offset = int(time_offset)
        if not 0 <= self.time_offset < self.num_samples:
            raise ValueError(f"time_offset must be in [0, {self.num_samples}), got "
                             f"{time_offset}.")

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        return self.randint(self.num_samples - self.time_offset, num_samples)

    def sample_conditional(self, reference_idx: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(reference_idx, device=self.device) + self.time_offset


class _NearestLabel(JointDistribution, HasGenerator):
    """Positive = the sample whose label is nearest to a target built from the reference."""

    def __init__(self, continuous, time_delta: int = 1, device: str | torch.device = "cpu",
                 seed: int | None = None):
        HasGenerator.__init__(self, device=device, seed=seed)
        self.data = as_tensor(continuous, "continuous", self.device).float()
        self.labels = self.data[:, None] if self.data.dim() == 1 else self.data
        self.time_delta = int(time_delta)
        if not 0 <= self.time_delta < len(self.labels):
            raise ValueError(f"time_delta must be in [0, {len(self.labels)}), got {time_delta}.")
        self.index = ContinuousIndex(self.labels)

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        return self.randint(len(self.labels), num_samples)

    def target(self, reference_idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample_conditional(self, reference_idx: torch.Tensor) -> torch.Tensor:
        reference_idx = torch.as_tensor(reference_idx, device=self.device)
        if reference_idx.dim() != 1:
            raise ValueError(f"reference_idx must be 1-D, got shape "
                             f"{tuple(reference_idx.shape)}.")
        return self.index.search(self.target(reference_idx))


class TimedeltaDistribution(_NearestLabel):
    """Target = label of the reference + the label change over ``time_delta`` steps at a
    random other time (the empirical distribution of behaviour changes)."""

    def target(self, reference_idx: torch.Tensor) -> torch.Tensor:
        start = self.randint(len(self.labels) - self.time_delta, len(reference_idx))
        change = self.labels[start + self.time_delta] - self.labels[start]
        return self.labels[reference_idx] + change


class DeltaNormalDistribution(_NearestLabel):
    """Target = label of the reference + N(0, delta^2) noise in every label dimension.

    The noise comes from torch's global generator (as in the reference), so
    ``torch.manual_seed`` fixes it.
    """

    def __init__(self, continuous, delta: float = 0.1, device: str | torch.device = "cpu",
                 seed: int | None = None):
        if not float(delta) > 0:
            raise ValueError(f"delta must be > 0, got {delta}.")
        self.delta = float(delta)
        super().__init__(continuous, 1, device, seed)

    def target(self, reference_idx: torch.Tensor) -> torch.Tensor:
        mean = self.labels[reference_idx]
        return torch.normal(mean, torch.full_like(mean, self.delta))
