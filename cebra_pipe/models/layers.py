"""Building blocks of the offset convolutional models."""

from __future__ import annotations

import torch
from torch import nn


class _Skip(nn.Module):
    """Residual wrapper: ``x[crop] + module(x)`` for a valid (unpadded) convolution.

    A valid convolution with kernel ``k`` and stride 1 shortens the time axis by
    ``k - 1``; the input is cropped symmetrically (extra sample on the right) so
    the residual sum aligns each output with the centre of its window.
    """

    def __init__(self, *modules: nn.Module, crop: tuple[int, int]):
        super().__init__()
        self.module = nn.Sequential(*modules)
        self.crop = crop

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        left, right = self.crop
        skip = inp[..., left:inp.shape[-1] - right]
        return skip + self.module(inp)


def residual_block(num_units: int, kernel: int = 3, dropout: float | None = None) -> _Skip:
    """Conv1d(k) + GELU with a skip connection, optionally followed by dropout."""
    layers: list[nn.Module] = [nn.Conv1d(num_units, num_units, kernel), nn.GELU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    left = (kernel - 1) // 2
    return _Skip(*layers, crop=(left, kernel - 1 - left))
