"""Distributions over discrete labels: positives share the reference's label."""

from __future__ import annotations

import torch

from cebra_pipe.distributions.base import HasGenerator, JointDistribution, as_tensor


class Discrete(JointDistribution, HasGenerator):
    """Samples grouped by integer label ``samples (n,)``.

    ``sample_empirical`` draws indices uniformly over time (classes as often as they
    occur), ``sample_uniform`` every class equally often, ``sample_conditional`` an
    index with the given label.
    """

    def __init__(self, samples, device: str | torch.device = "cpu", seed: int | None = None):
        HasGenerator.__init__(self, device=device, seed=seed)
        self.samples = as_tensor(samples, "samples", self.device).long().reshape(-1)
        self.classes, inverse, self.counts = torch.unique(
            self.samples, return_inverse=True, return_counts=True)
        self.members = torch.argsort(inverse, stable=True)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def _member_of(self, klass: torch.Tensor) -> torch.Tensor:
        draw = torch.rand(klass.shape, generator=self.generator, device=self.device)
        count = self.counts[klass]
        return self.members[self.starts[klass] + (draw * count).long().clamp_max(count - 1)]

    def sample_uniform(self, num_samples: int) -> torch.Tensor:
        return self._member_of(self.randint(len(self.classes), num_samples))

    def sample_empirical(self, num_samples: int) -> torch.Tensor:
        return self.randint(len(self.samples), num_samples)

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        return self.sample_empirical(num_samples)

    def sample_conditional(self, reference_labels) -> torch.Tensor:
        """Indices ``(b,)`` whose label equals ``reference_labels (b,)``."""
        labels = as_tensor(reference_labels, "reference_labels", self.device).long()
        klass = torch.searchsorted(self.classes, labels.reshape(-1))
        found = klass < len(self.classes)
        found[found.clone()] &= self.classes[klass[found]] == labels.reshape(-1)[found]
        if not bool(found.all()):
            missing = torch.unique(labels.reshape(-1)[~found]).tolist()
            raise ValueError(f"reference_labels {missing} do not occur in the samples.")
        return self._member_of(klass)


class DiscreteUniform(Discrete):
    """:class:`Discrete` whose prior draws every class equally often."""

    def sample_prior(self, num_samples: int) -> torch.Tensor:
        return self.sample_uniform(num_samples)


class DiscreteEmpirical(Discrete):
    """:class:`Discrete` whose prior follows the label frequencies."""
