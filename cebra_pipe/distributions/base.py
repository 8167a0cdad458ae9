"""Base classes of the public sampling distributions (index-level, no dataset needed)."""

from __future__ import annotations

import numpy as np
import torch


def as_tensor(values, name: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """``values`` (array-like) as a tensor on ``device``; a 1-D or 2-D one, else ValueError."""
    tensor = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor)
                             else values, device=device)
    if tensor.dim() not in (1, 2) or len(tensor) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D or 2-D array, got shape "
                         f"{tuple(tensor.shape)}.")
    return tensor


class HasGenerator:
    """Owns the ``torch.Generator`` all draws come from (seeded with ``seed``)."""

    def __init__(self, device: str | torch.device = "cpu", seed: int | None = None):
        self.device = torch.device(device)
        self.seed = seed
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def randint(self, high: int | torch.Tensor, num_samples: int) -> torch.Tensor:
        """Uniform integers in ``[0, high)`` ``(num_samples,)``; ``high`` may be a tensor."""
        draw = torch.rand(int(num_samples), generator=self.generator, device=self.device)
        return torch.clamp_max((draw * high).long(), torch.as_tensor(high) - 1)


class PriorDistribution:
    """Draws references: ``sample_prior(num_samples) -> (num_samples,)`` indices."""

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        raise NotImplementedError


class ConditionalDistribution:
    """Draws positives: ``sample_conditional(reference) -> (num_samples,)`` indices."""

    def sample_conditional(self, reference_idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class JointDistribution(PriorDistribution, ConditionalDistribution):
    """A prior over references and a conditional over their positives."""


class Prior(PriorDistribution, HasGenerator):
    """Uniform over the ``len(data)`` samples of ``data``."""

    def __init__(self, data, device: str | torch.device = "cpu", seed: int | None = None):
        HasGenerator.__init__(self, device=device, seed=seed)
        self.num_samples = len(as_tensor(data, "data"))

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        return self.randint(self.num_samples, num_samples)
