"""Distributions over a discrete and a continuous label together."""

from __future__ import annotations

import torch

from cebra_pipe.distributions.base import HasGenerator, JointDistribution, as_tensor
from cebra_pipe.distributions.discrete import Discrete
from cebra_pipe.distributions.index import ConditionalIndex


class Mixed(JointDistribution, HasGenerator):
    """Positives with the reference's discrete label and the nearest continuous label."""

    def __init__(self, discrete, continuous, device: str | torch.device = "cpu",
                 seed: int | None = None):
        HasGenerator.__init__(self, device=device, seed=seed)
        self.discrete = as_tensor(discrete, "discrete", self.device).long().reshape(-1)
        self.continuous = as_tensor(continuous, "continuous", self.device).float()
        self.discrete_distribution = Discrete(self.discrete, device, seed)
        self.index = ConditionalIndex(self.discrete, self.continuous)

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        return self.randint(len(self.discrete), num_samples)

    def sample_conditional_discrete(self, discrete) -> torch.Tensor:
        """Indices ``(b,)`` with the discrete labels ``discrete (b,)``."""
        return self.discrete_distribution.sample_conditional(discrete)

    def sample_conditional(self, discrete, continuous) -> torch.Tensor:
        """Indices ``(b,)`` with label ``discrete`` and nearest to ``continuous (b, d)``."""
        return self.index.search(continuous, discrete)


class MixedTimeDeltaDistribution(Mixed):
    """Same discrete label; continuous target = the reference's label plus the change
    over ``time_delta`` steps at a random time."""

    def __init__(self, discrete, continuous, time_delta: int = 1,
                 device: str | torch.device = "cpu", seed: int | None = None):
        super().__init__(discrete, continuous, device, seed)
        self.time_delta = int(time_delta)
        if not 0 < self.time_delta < len(self.discrete):
            raise ValueError(f"time_delta must be in [1, {len(self.discrete)}), got "
                             f"{time_delta}.")

    def sample_conditional(self, reference_idx: torch.Tensor) -> torch.Tensor:
        reference_idx = torch.as_tensor(reference_idx, device=self.device)
        labels = self.continuous if self.continuous.dim() == 2 else self.continuous[:, None]
        start = self.randint(len(labels) - self.time_delta, len(reference_idx))
        target = labels[reference_idx] + labels[start + self.time_delta] - labels[start]
        return self.index.search(target, self.discrete[reference_idx])
