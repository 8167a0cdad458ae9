"""InfoNCE criteria for contrastive learning.

For references ``r_i``, their positives ``p_i`` and negatives ``n_j`` (all
``(batch, dim)``), and a similarity ``sim`` scaled by the temperature ``T``::

    loss = mean_i [ -sim(r_i, p_i) / T + logsumexp_j sim(r_i, n_j) / T ]
         =         align               +   uniform

The positive is deliberately not part of the denominator (CEBRA's variant), so the
loss of a model at chance is ``log(num_negatives)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cebra_pipe.registry import Registry

_registry = Registry("criterion")
register = _registry.register
get_options = _registry.get_options
init = _registry.init


def cosine_similarity(ref: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Dot products ``(n, m)`` of (already normalised) embeddings ``(n, d)``, ``(m, d)``."""
    return ref @ other.T


def neg_squared_euclidean(ref: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Negative squared distances ``(n, m)`` between rows of ``ref`` and ``other``."""
    ref_sq = (ref * ref).sum(1, keepdim=True)
    other_sq = (other * other).sum(1)
    return -(ref_sq - 2 * ref @ other.T + other_sq)


def paired_cosine(ref: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products ``(n,)`` of ``ref`` and ``pos`` ``(n, d)``."""
    return (ref * pos).sum(1)


def paired_neg_squared_euclidean(ref: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Row-wise negative squared distances ``(n,)`` of ``ref`` and ``pos`` ``(n, d)``."""
    return -((ref - pos) ** 2).sum(1)


def infonce(pos_sim: torch.Tensor, neg_sim: torch.Tensor,
            inverse_temperature: torch.Tensor | float) -> tuple[torch.Tensor, ...]:
    """Loss from similarities; ``pos_sim (n,)``, ``neg_sim (n, m)``.

    Returns ``(loss, align, uniform)``, scalars. ``torch.logsumexp`` subtracts the
    row maximum internally, so large inverse temperatures do not overflow.
    """
    align = -(pos_sim * inverse_temperature).mean()
    uniform = torch.logsumexp(neg_sim * inverse_temperature, dim=1).mean()
    return align + uniform, align, uniform


class _InfoNCE(nn.Module):
    """Shared forward of all criteria; subclasses pick similarity and temperature."""

    similarity = staticmethod(cosine_similarity)
    paired_similarity = staticmethod(paired_cosine)

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self._temperature = float(temperature)

    @property
    def temperature(self) -> float:
        return self._temperature

    def inverse_temperature(self) -> torch.Tensor | float:
        return 1.0 / self._temperature

    def forward(self, ref: torch.Tensor, pos: torch.Tensor,
                neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, align, uniform)`` for embeddings ``ref``, ``pos`` ``(n, d)``, ``neg (m, d)``."""
        pos_sim = self.paired_similarity(ref, pos)
        neg_sim = self.similarity(ref, neg)
        return infonce(pos_sim, neg_sim, self.inverse_temperature())


class _LearnableTemperature(_InfoNCE):
    """Learns ``log(1/T)``; the temperature never falls below ``min_temperature``."""

    def __init__(self, temperature: float = 1.0, min_temperature: float | None = None):
        super().__init__(temperature)
        if min_temperature is not None and not min_temperature > 0:
            raise ValueError(f"min_temperature must be > 0, got {min_temperature}.")
        self.min_temperature = min_temperature
        self.log_inverse_temperature = nn.Parameter(torch.tensor(-math.log(temperature)))

    def inverse_temperature(self) -> torch.Tensor:
        log_inv = self.log_inverse_temperature
        if self.min_temperature is not None:
            log_inv = log_inv.clamp(max=-math.log(self.min_temperature))
        return log_inv.exp()

    @property
    def temperature(self) -> float:
        return float(1.0 / self.inverse_temperature().detach())


@register("infonce-cosine")
class FixedCosineInfoNCE(_InfoNCE):
    """InfoNCE on cosine similarity with a fixed temperature."""


@register("infonce-euclidean")
class FixedEuclideanInfoNCE(_InfoNCE):
    """InfoNCE on negative squared Euclidean distance with a fixed temperature."""

    similarity = staticmethod(neg_squared_euclidean)
    paired_similarity = staticmethod(paired_neg_squared_euclidean)


@register("infonce-cosine-learnable")
class LearnableCosineInfoNCE(_LearnableTemperature):
    """InfoNCE on cosine similarity with a learnable temperature."""


@register("infonce-euclidean-learnable")
class LearnableEuclideanInfoNCE(_LearnableTemperature):
    """InfoNCE on negative squared Euclidean distance with a learnable temperature."""

    similarity = staticmethod(neg_squared_euclidean)
    paired_similarity = staticmethod(paired_neg_squared_euclidean)


InfoNCE = FixedCosineInfoNCE
InfoMSE = FixedEuclideanInfoNCE
