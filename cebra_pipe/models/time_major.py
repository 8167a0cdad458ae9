"""Inference over a whole recording in time-major layout ``(time, channels)``.

``nn.Conv1d`` over one long sequence with 32 channels runs far below the CPU's
matrix-multiply speed (about 20 against 180 GFLOP/s on this 2-core machine).
A valid, stride-1 convolution with kernel ``k`` is the sum of ``k`` shifted matrix
products, and one product with all ``k`` kernel taps side by side (``(time, C) @
(C, k * out)``) is a wider, faster GEMM. On this 2-core CPU it embeds 1.3-1.5x more
samples per second than the convolution path. It only pays off at inference: for
training windows of ~10 steps, ``conv1d``'s backward is faster.

Only stacks of plain layers are translated: stride-1 unpadded ``Conv1d``, GELU,
dropout (in eval mode), elementwise activations, the closing ``Normalize`` /
``SqueezeTime`` and residual ``Skip`` / ``PadSkip`` blocks of those. Anything else makes
:func:`supports` false and the caller uses the model's own ``forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cebra_pipe.models.layers import Normalize, PadSkip, Skip, SqueezeTime

# Modules that act on each sample's channels alone, so they run unchanged on
# ``(time, channels)``: elementwise activations and the per-sample normalisation.
_LAYOUT_FREE = (nn.GELU, nn.Tanh, nn.Hardtanh, Normalize, SqueezeTime)


def _plain_conv(module: nn.Module) -> bool:
    return (type(module) is nn.Conv1d and module.stride == (1,) and module.dilation == (1,)
            and module.padding == (0,) and module.groups == 1)


def _supported(module: nn.Module) -> bool:
    if _plain_conv(module) or type(module) in _LAYOUT_FREE:
        return True
    if type(module) in (nn.Dropout, nn.Dropout1d):
        return not module.training
    if type(module) is PadSkip:
        return _plain_conv(module.module)
    if type(module) is Skip:
        return all(_supported(sub) for sub in module.module)
    return False


def supports(encoder: nn.Module) -> bool:
    """Whether ``encoder`` is an ``_OffsetModel``-like stack :func:`embed` can run."""
    net = getattr(encoder, "net", None)
    return (isinstance(net, nn.Sequential) and getattr(encoder, "subsample", None) == 1
            and all(_supported(module) for module in net))


def _conv(hidden: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Valid convolution of ``hidden (time, in)`` -> ``(time - k + 1, out)``."""
    out_channels, in_channels, kernel = conv.weight.shape
    taps = conv.weight.permute(1, 2, 0).reshape(in_channels, kernel * out_channels)
    product = hidden @ taps
    length = hidden.shape[0] - kernel + 1
    out = product[:length, :out_channels]
    out = out + conv.bias if conv.bias is not None else out.clone()
    for shift in range(1, kernel):
        out += product[shift:shift + length, shift * out_channels:(shift + 1) * out_channels]
    return out


def _apply(module: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if type(module) is nn.Conv1d:
        return _conv(hidden, module)
    if type(module) in _LAYOUT_FREE:
        return module(hidden)
    if type(module) in (nn.Dropout, nn.Dropout1d):
        return hidden
    if type(module) is PadSkip:
        return F.pad(hidden, (0, module.padding)) + _conv(hidden, module.module)
    left, right = module.crop
    inner = hidden
    for sub in module.module:
        inner = _apply(sub, inner)
    inner += hidden[left:hidden.shape[0] - right]
    return inner


def embed(encoder: nn.Module, segment: torch.Tensor) -> torch.Tensor:
    """Embed every full window of ``segment (time, neurons)``.

    Returns ``(time - len(offset) + 1, num_output)``, equal to the encoder's
    ``forward`` on ``segment.T[None]`` up to float rounding. Requires
    :func:`supports`.
    """
    hidden = segment
    for module in encoder.net:
        hidden = _apply(module, hidden)
    return hidden
