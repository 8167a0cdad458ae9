"""Building blocks of the offset convolutional models.

All blocks work on ``(batch, channels, time)``; the channel-wise ones
(:class:`Normalize`, :class:`SqueezeTime`, :class:`PadSkip` with kernel-1 convolutions)
also work on time-major ``(time, channels)`` tensors, which ``time_major.embed`` uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Skip(nn.Module):
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


class PadSkip(nn.Module):
    """Residual around a kernel-1 convolution that changes the channel count.

    The input's channels are zero-padded (or cropped) to the output's before the sum,
    so a widening or narrowing layer still has an identity path.
    """

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        if conv.kernel_size != (1,):
            raise ValueError(f"PadSkip needs a kernel-1 convolution, got kernel "
                             f"{conv.kernel_size}.")
        self.module = conv
        self.padding = conv.out_channels - conv.in_channels

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """``inp : (batch, in, time)`` -> ``(batch, out, time)``."""
        # F.pad pads (or with a negative size crops) the last axis: move channels there.
        padded = F.pad(inp.transpose(1, -1), (0, self.padding)).transpose(1, -1)
        return padded + self.module(inp)


class MeanAndConv(nn.Module):
    """A strided convolution next to the input taken every ``stride`` samples.

    ``(batch, in, time) -> (batch, out + in, (time - kernel) // stride + 1)``: the
    downsampled raw input is concatenated to the convolution's channels so the next
    layer sees both.
    """

    def __init__(self, num_input: int, num_output: int, kernel: int, *, stride: int):
        super().__init__()
        self.stride = int(stride)
        self.layer = nn.Conv1d(num_input, num_output, kernel, stride=stride)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        conv = self.layer(inp)
        downsampled = inp[..., ::self.stride][..., :conv.shape[-1]]
        return torch.cat([conv, downsampled], dim=1)


class Normalize(nn.Module):
    """Project each embedding onto the unit sphere (along the channel axis 1)."""

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        return F.normalize(inp, p=2, dim=1)


class SqueezeTime(nn.Module):
    """Drop the time axis of ``(batch, channels, 1)``; longer outputs pass unchanged."""

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        if inp.dim() == 3 and inp.shape[-1] == 1:
            return inp.squeeze(-1)
        return inp


def residual_block(num_units: int, kernel: int = 3,
                   channel_dropout: float | None = None) -> Skip:
    """Conv1d(k) + GELU with a skip connection.

    ``channel_dropout`` drops whole input channels (``nn.Dropout1d``) before the
    convolution, inside the residual branch.
    """
    layers: list[nn.Module] = [nn.Dropout1d(channel_dropout)] if channel_dropout else []
    layers += [nn.Conv1d(num_units, num_units, kernel), nn.GELU()]
    left = (kernel - 1) // 2
    return Skip(*layers, crop=(left, kernel - 1 - left))
