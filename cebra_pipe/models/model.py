"""Offset convolutional encoders and their registry.

Every model maps input windows ``(batch, neurons, window)`` to embeddings. A model
with receptive field ``len(get_offset())`` turns a window of exactly that length
into one embedding ``(batch, num_output)``, and a longer input ``(batch, neurons,
time)`` into ``(batch, num_output, time - len(offset) + 1)`` (or fewer for the
subsampling models).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cebra_pipe.data.datatypes import Offset
from cebra_pipe.models.layers import residual_block
from cebra_pipe.registry import Registry

_registry = Registry("model")
register = _registry.register
parametrize = _registry.parametrize
get_options = _registry.get_options
is_registered = _registry.is_registered


def init(name: str, num_neurons: int, num_units: int, num_output: int, **kwargs) -> nn.Module:
    """Build the registered model ``name``.

    Parameters
    ----------
    name
        A name from :func:`get_options`.
    num_neurons
        Input dimension (neurons / features).
    num_units
        Hidden channels.
    num_output
        Embedding dimension.
    """
    return _registry.init(name, num_neurons=num_neurons, num_units=num_units,
                          num_output=num_output, **kwargs)


class Model(nn.Module):
    """Base class of all encoders: knows its input/output dimensions."""

    def __init__(self, *, num_input: int, num_output: int):
        super().__init__()
        if int(num_input) < 1 or int(num_output) < 1:
            raise ValueError(f"num_input and num_output must be >= 1, got "
                             f"num_input={num_input}, num_output={num_output}.")
        self.num_input = int(num_input)
        self.num_output = int(num_output)

    def get_offset(self) -> Offset:
        raise NotImplementedError


class HasFeatureEncoder:
    """Models whose layers from input to embedding are reachable as ``feature_encoder``."""

    @property
    def feature_encoder(self) -> nn.Module:
        """The network ``(batch, neurons, time) -> (batch, num_output, time')``."""
        return self.net


class ConvolutionalModelMixin:
    """Marks models that slide over time: a whole recording can be fed at once."""

    #: Output samples per input sample when sliding over a recording (1 = one per step).
    subsample: int = 1


class _OffsetModel(Model, HasFeatureEncoder):
    """A stack of layers applied to input windows, L2-normalised when ``normalize``.

    Parameters
    ----------
    *layers
        Modules applied in order to ``(batch, num_input, time)``.
    num_input, num_output
        Input and embedding dimensions.
    normalize
        Project embeddings onto the unit sphere (cosine criteria).
    """

    def __init__(self, *layers: nn.Module, num_input: int, num_output: int,
                 normalize: bool = True):
        super().__init__(num_input=num_input, num_output=num_output)
        if not layers:
            raise ValueError("_OffsetModel needs at least one layer.")
        self.net = nn.Sequential(*layers)
        self.normalize = bool(normalize)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """Embed ``(batch, neurons, time)``; a single output step is squeezed away."""
        out = self.net(inp)
        if self.normalize:
            out = F.normalize(out, p=2, dim=1)
        if out.dim() == 3 and out.shape[-1] == 1:
            out = out.squeeze(-1)
        return out


def _residual_stack(num_neurons: int, num_units: int, num_output: int, num_blocks: int,
                    first_kernel: int = 2, last_kernel: int = 3,
                    dropout: float | None = None) -> list[nn.Module]:
    """Conv(first_kernel), GELU, ``num_blocks`` residual Conv(3)+GELU, Conv(last_kernel)."""
    return [nn.Conv1d(num_neurons, num_units, first_kernel), nn.GELU(),
            *(residual_block(num_units, 3, dropout) for _ in range(num_blocks)),
            nn.Conv1d(num_units, num_output, last_kernel)]


def _pointwise_stack(num_neurons: int, num_units: int, num_output: int,
                     num_hidden: int) -> list[nn.Module]:
    """An MLP applied independently at each time step (kernel-1 convolutions)."""
    layers: list[nn.Module] = [nn.Conv1d(num_neurons, num_units, 1), nn.GELU()]
    for _ in range(num_hidden):
        layers += [nn.Conv1d(num_units, num_units, 1), nn.GELU()]
    return layers + [nn.Conv1d(num_units, num_output, 1)]


# name -> (residual blocks, first kernel, last kernel, Offset); receptive field is
# first + 2 * blocks + last - 1 samples.
_RESIDUAL_ARCHITECTURES = {
    "offset5-model": (1, 2, 2, Offset(2, 3)),
    "offset10-model": (3, 2, 3, Offset(5, 5)),
    "offset15-model": (5, 2, 4, Offset(7, 8)),
    "offset20-model": (8, 2, 3, Offset(10, 10)),
    "offset36-model": (16, 2, 3, Offset(18, 18)),
    "offset40-model": (18, 2, 3, Offset(20, 20)),
    "offset50-model": (23, 2, 3, Offset(25, 25)),
}


class _ResidualOffsetModel(_OffsetModel, ConvolutionalModelMixin):
    """Residual convolutional encoder, shape fixed by ``_RESIDUAL_ARCHITECTURES``."""

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = True, *, architecture: str,
                 dropout: float | None = None):
        blocks, first, last, offset = _RESIDUAL_ARCHITECTURES[architecture]
        super().__init__(*_residual_stack(num_neurons, num_units, num_output, blocks,
                                          first, last, dropout),
                         num_input=num_neurons, num_output=num_output, normalize=normalize)
        self._offset = offset

    def get_offset(self) -> Offset:
        return self._offset


for _name in _RESIDUAL_ARCHITECTURES:
    register(_name, architecture=_name)(_ResidualOffsetModel)
register("offset10-model-mse", architecture="offset10-model", normalize=False)(
    _ResidualOffsetModel)
register("offset36-model-dropout", architecture="offset36-model", dropout=0.1)(
    _ResidualOffsetModel)


@register("offset1-model", num_hidden=2)
@register("offset1-model-mse", num_hidden=2, normalize=False)
@register("offset1-model-v2", num_hidden=3)
class _PointwiseModel(_OffsetModel, ConvolutionalModelMixin):
    """Time-step-wise MLP (receptive field 1): the model for non-temporal data."""

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = True, *, num_hidden: int = 2):
        super().__init__(*_pointwise_stack(num_neurons, num_units, num_output, num_hidden),
                         num_input=num_neurons, num_output=num_output, normalize=normalize)

    def get_offset(self) -> Offset:
        return Offset(0, 1)


class _SubsampleOffsetModel(_OffsetModel, ConvolutionalModelMixin):
    """Residual encoder with two stride-2 convolutions: one output per 4 input steps."""

    subsample = 4

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = True, *, blocks: tuple[int, int, int], first_kernel: int,
                 last_kernel: int, offset: Offset):
        layers: list[nn.Module] = [nn.Conv1d(num_neurons, num_units, first_kernel), nn.GELU()]
        for stage, num_blocks in enumerate(blocks):
            if stage > 0:
                layers += [nn.Conv1d(num_units, num_units, 2, stride=2), nn.GELU()]
            layers += [residual_block(num_units, 3) for _ in range(num_blocks)]
        layers.append(nn.Conv1d(num_units, num_output, last_kernel))
        super().__init__(*layers, num_input=num_neurons, num_output=num_output,
                         normalize=normalize)
        self._offset = offset

    def get_offset(self) -> Offset:
        return self._offset


# Receptive field = first - 1 + 2*b0 + 1 + 4*b1 + 2 + 8*b2 + 4*(last - 1) + 1.
register("offset40-model-4x-subsample", blocks=(1, 2, 2), first_kernel=3, last_kernel=3,
         offset=Offset(20, 20))(_SubsampleOffsetModel)
register("offset20-model-4x-subsample", blocks=(1, 1, 1), first_kernel=3, last_kernel=1,
         offset=Offset(10, 10))(_SubsampleOffsetModel)
