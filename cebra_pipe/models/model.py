"""Offset convolutional encoders and their registry.

Every model maps input windows ``(batch, neurons, window)`` to embeddings. A model
with receptive field ``len(get_offset())`` turns a window of exactly that length
into one embedding ``(batch, num_output)``, and a longer input ``(batch, neurons,
time)`` into ``(batch, num_output, time - len(offset) + 1)`` (or
``(time - len(offset)) // resample_factor + 1`` for the resampling models).

The registered names, their receptive fields and output normalisation are those of
the reference ``cebra`` 0.6.1, registered in the same order (so ``get_options`` with
a ``limit`` lists the same names). ``model.net`` is the whole map from input to
embedding, ending in the normalisation (when the model normalises) and the removal
of a length-1 time axis.
"""

from __future__ import annotations

import torch
from torch import nn

from cebra_pipe.data.datatypes import Offset
from cebra_pipe.models.layers import (MeanAndConv, Normalize, PadSkip, Skip, SqueezeTime,
                                      residual_block)
from cebra_pipe.registry import Registry

_registry = Registry("model")
register = _registry.register
parametrize = _registry.parametrize
get_options = _registry.get_options
is_registered = _registry.is_registered
get = _registry.get


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


class ResampleModelMixin:
    """Models with one output sample per ``resample_factor`` input samples."""

    resample_factor: int = 1

    @property
    def subsample(self) -> int:
        """cebra_pipe's name for ``resample_factor`` (the solver slides only when 1)."""
        return self.resample_factor


def _centred_offset(receptive_field: int) -> Offset:
    """The window of ``receptive_field`` samples around a time step (extra one right)."""
    return Offset(receptive_field // 2, receptive_field - receptive_field // 2)


class _OffsetModel(Model, HasFeatureEncoder):
    """A stack of layers applied to input windows; ``net`` is the whole model.

    Parameters
    ----------
    *layers
        Modules applied in order to ``(batch, num_input, time)``.
    num_input, num_output
        Input and embedding dimensions.
    normalize
        Project embeddings onto the unit sphere (cosine criteria): ``net`` then ends
        in :class:`~cebra_pipe.models.layers.Normalize`.
    offset
        The receptive field around each output step; subclasses that define
        ``get_offset`` themselves (as in the usage guide) leave it out.
    """

    def __init__(self, *layers: nn.Module, num_input: int, num_output: int,
                 normalize: bool = True, offset: Offset | None = None):
        super().__init__(num_input=num_input, num_output=num_output)
        if not layers:
            raise ValueError("_OffsetModel needs at least one layer.")
        closing = [Normalize()] if normalize else []
        self.net = nn.Sequential(*layers, *closing, SqueezeTime())
        self.normalize = bool(normalize)
        self._offset = offset

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """Embed ``(batch, neurons, time)``; a single output step is squeezed away."""
        return self.net(inp)

    def get_offset(self) -> Offset:
        if self._offset is None:
            raise NotImplementedError(f"{type(self).__name__} must pass offset= or define "
                                      "get_offset().")
        return self._offset


def _residual_layers(num_neurons: int, num_units: int, num_output: int, blocks: int,
                     last_kernel: int, dropout: float = 0.0,
                     dropout_blocks: bool = False) -> list[nn.Module]:
    """Conv(2), [channel dropout], GELU, ``blocks`` residual Conv(3)+GELU, Conv(last).

    Receptive field ``2 + 2 * blocks + last_kernel - 1`` samples.
    """
    if int(num_units) < 1:
        raise ValueError(f"num_units must be >= 1, got {num_units}.")
    first: list[nn.Module] = [nn.Conv1d(num_neurons, num_units, 2)]
    if dropout:
        first.append(nn.Dropout1d(dropout))
    return [*first, nn.GELU(),
            *(residual_block(num_units, 3, dropout if dropout_blocks else None)
              for _ in range(blocks)),
            nn.Conv1d(num_units, num_output, last_kernel)]


def _pointwise_layers(widths: list[int], skip: str | None = None) -> list[nn.Module]:
    """An MLP applied at each time step: kernel-1 convolutions ``widths[i] -> widths[i+1]``
    with GELU between them.

    ``skip`` adds identity paths around hidden layers: ``"pad"`` around every layer but
    the last (channels zero-padded or cropped to fit), ``"inner"`` around each hidden
    same-width layer (GELU after the sum), ``"inner-gelu"`` likewise with GELU inside.
    """
    if min(widths) < 1:
        raise ValueError(f"every layer needs >= 1 unit, got widths {widths} (raise "
                         "num_units / num_output).")
    if skip not in (None, "pad", "inner", "inner-gelu"):
        raise ValueError(f"skip must be None, 'pad', 'inner' or 'inner-gelu', got {skip!r}.")
    layers: list[nn.Module] = []
    pairs = list(zip(widths[:-1], widths[1:]))
    for i, (width_in, width_out) in enumerate(pairs):
        conv = nn.Conv1d(width_in, width_out, 1)
        inner = i > 0 and width_in == width_out
        if i == len(pairs) - 1:
            layers.append(conv)
        elif skip == "pad":
            layers += [PadSkip(conv), nn.GELU()]
        elif skip == "inner" and inner:
            layers += [Skip(conv, crop=(0, 0)), nn.GELU()]
        elif skip == "inner-gelu" and inner:
            layers.append(Skip(conv, nn.GELU(), crop=(0, 0)))
        else:
            layers += [conv, nn.GELU()]
    return layers


class _ResidualOffsetModel(_OffsetModel, ConvolutionalModelMixin):
    """Residual convolutional encoder (see :func:`_residual_layers`).

    ``tanh`` bounds the output to (-1, 1); ``dropout`` drops whole channels after the
    first convolution (and inside every residual block with ``dropout_blocks``).
    """

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = True, *, blocks: int, last_kernel: int,
                 tanh: bool = False, dropout: float = 0.0, dropout_blocks: bool = False):
        layers = _residual_layers(num_neurons, num_units, num_output, blocks, last_kernel,
                                  dropout, dropout_blocks)
        super().__init__(*layers, *([nn.Tanh()] if tanh else []), num_input=num_neurons,
                         num_output=num_output, normalize=normalize,
                         offset=_centred_offset(2 + 2 * blocks + last_kernel - 1))


class _PointwiseModel(_OffsetModel, ConvolutionalModelMixin):
    """Time-step-wise MLP (receptive field 1): the model for non-temporal data.

    Parameters
    ----------
    hidden
        ``hidden(num_units, num_output)`` -> the hidden layer widths.
    skip
        Identity paths, see :func:`_pointwise_layers`.
    tanh, clip
        Bound the output with ``tanh`` or clip it to ``[-clip[0], clip[1]]``.
    """

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = True, *, hidden, skip: str | None = None,
                 tanh: bool = False, clip: tuple[float, float] | None = None):
        widths = [num_neurons, *hidden(int(num_units), int(num_output)), num_output]
        bound: list[nn.Module] = [nn.Tanh()] if tanh else []
        if clip is not None:
            bound.append(nn.Hardtanh(-clip[0], clip[1]))
        super().__init__(*_pointwise_layers(widths, skip), *bound, num_input=num_neurons,
                         num_output=num_output, normalize=normalize, offset=Offset(0, 1))


def _half_units(num_units: int, num_output: int) -> tuple[int, ...]:
    return (num_units, num_units, num_units // 2)


def _wide_output(num_units: int, num_output: int) -> tuple[int, ...]:
    # Hidden widths follow the embedding size, not num_units (as in the reference).
    return (30 * num_output, 30 * num_output, 10 * num_output)


class _ClippedModel(_PointwiseModel):
    """The ``offset1-model-mse`` MLP with outputs clipped to ``[-clip_min, clip_max]``."""

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = False, *, clip_min: float, clip_max: float):
        super().__init__(num_neurons, num_units, num_output, normalize, hidden=_wide_output,
                         clip=(clip_min, clip_max))


class _DeepPointwiseModel(_PointwiseModel):
    """MLP with ``n_intermediate_layers`` hidden ``num_units`` layers, then
    ``num_units // 2``; ``tanh="-tanh"`` bounds the output."""

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = False, *, n_intermediate_layers: int, tanh: str = "",
                 skip: str | None = None):
        def hidden(units: int, _: int) -> tuple[int, ...]:
            return (units,) * (1 + int(n_intermediate_layers)) + (units // 2,)

        super().__init__(num_neurons, num_units, num_output, normalize, hidden=hidden,
                         skip=skip, tanh=tanh == "-tanh")


class _ResampleConvModel(_OffsetModel, ResampleModelMixin, ConvolutionalModelMixin):
    """Two stride-2 layers (the first also passes the input on), then residual blocks:
    one output per 4 input samples. Receptive field ``8 + 8 * blocks + 4 * (last - 1)``.
    """

    resample_factor = 4

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = True, *, blocks: int, last_kernel: int):
        layers = [MeanAndConv(num_neurons, num_units, 4, stride=2),
                  nn.Conv1d(num_neurons + num_units, num_units, 3, stride=2), nn.GELU(),
                  *(residual_block(num_units, 3) for _ in range(blocks)),
                  nn.Conv1d(num_units, num_output, last_kernel)]
        super().__init__(*layers, num_input=num_neurons, num_output=num_output,
                         normalize=normalize,
                         offset=_centred_offset(8 + 8 * blocks + 4 * (last_kernel - 1)))


class _ResampleMLPModel(_OffsetModel, ResampleModelMixin, ConvolutionalModelMixin):
    """One stride-2 layer over 4 samples (passing the input on), then a per-step MLP:
    one output per 2 input samples, receptive field 4."""

    resample_factor = 2

    def __init__(self, num_neurons: int, num_units: int, num_output: int,
                 normalize: bool = True):
        widths = [num_neurons + num_units, *_half_units(num_units, num_output), num_output]
        super().__init__(MeanAndConv(num_neurons, num_units, 4, stride=2),
                         *_pointwise_layers(widths), num_input=num_neurons,
                         num_output=num_output, normalize=normalize, offset=Offset(2, 2))


class ClassifierModel(Model, HasFeatureEncoder):
    """An encoder plus a linear ``classifier`` from (ReLU'd) features to class scores.

    ``forward`` returns ``(features (batch, num_output), scores (batch, classes))``;
    the classifier exists after :meth:`set_output_num`.
    """

    def __init__(self, *, num_input: int, num_output: int):
        super().__init__(num_input=num_input, num_output=num_output)
        self.classifier: nn.Module | None = None

    def set_output_num(self, label_num: int, override: bool = False) -> None:
        """Create the classifier for ``label_num`` classes (again only with ``override``)."""
        if self.classifier is not None and not override:
            raise RuntimeError("The classifier already exists; pass override=True to "
                               "replace it (and give its new parameters to the optimiser).")
        self.classifier = nn.Linear(self.num_output, int(label_num))

    def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.classifier is None:
            raise RuntimeError("Call set_output_num(label_num) before using a classifier "
                               "model.")
        features = self.feature_encoder(inp)
        return features, self.classifier(torch.relu(features))


class _SupervisedModel(ClassifierModel):
    """Classifier over the ``offset10-model`` (``window=10``) or ``offset1-model``
    (``window=1``) encoder without normalisation."""

    def __init__(self, num_neurons: int, num_units: int, num_output: int, *, window: int):
        super().__init__(num_input=num_neurons, num_output=num_output)
        if window == 10:
            layers = _residual_layers(num_neurons, num_units, num_output, 3, 3)
        elif window == 1:
            layers = _pointwise_layers([num_neurons, *_half_units(num_units, num_output),
                                        num_output])
        else:
            raise ValueError(f"window must be 10 or 1, got {window!r}.")
        self.net = nn.Sequential(*layers, SqueezeTime())
        self._offset = _centred_offset(window) if window > 1 else Offset(0, 1)

    def get_offset(self) -> Offset:
        return self._offset


# Registered in the reference's order, so that get_options(pattern, limit) agrees.
register("offset10-model", blocks=3, last_kernel=3)(_ResidualOffsetModel)
register("offset10-model-mse", blocks=3, last_kernel=3, normalize=False)(_ResidualOffsetModel)
register("offset5-model", blocks=1, last_kernel=2)(_ResidualOffsetModel)
register("offset1-model-mse", hidden=_wide_output, normalize=False)(_PointwiseModel)
register("offset1-model", hidden=_half_units)(_PointwiseModel)
register("offset1-model-v2", hidden=lambda units, _: (units,) * 3)(_PointwiseModel)
register("offset1-model-v3", hidden=lambda units, _: (units,) * 3, skip="inner")(
    _PointwiseModel)
register("offset1-model-v4", hidden=lambda units, _: (units,) * 5, skip="inner-gelu")(
    _PointwiseModel)
register("offset1-model-v5", hidden=lambda units, _: (units,) * 5, skip="inner")(
    _PointwiseModel)
for _alias in ("offset40-model-4x-subsample", "resample-model"):
    register(_alias, blocks=3, last_kernel=3)(_ResampleConvModel)
for _alias in ("offset20-model-4x-subsample", "resample5-model"):
    register(_alias, blocks=1, last_kernel=2)(_ResampleConvModel)
for _alias in ("offset4-model-2x-subsample", "resample1-model"):
    register(_alias)(_ResampleMLPModel)
register("supervised10-model", window=10)(_SupervisedModel)
register("supervised1-model", window=1)(_SupervisedModel)
register("offset36-model", blocks=16, last_kernel=3)(_ResidualOffsetModel)
register("offset36-model-dropout", blocks=16, last_kernel=3, dropout=0.1)(
    _ResidualOffsetModel)
register("offset36-model-more-dropout", blocks=16, last_kernel=3, dropout=0.1,
         dropout_blocks=True)(_ResidualOffsetModel)
register("offset40-model", blocks=18, last_kernel=3)(_ResidualOffsetModel)
register("offset50-model", blocks=23, last_kernel=3)(_ResidualOffsetModel)
register("offset15-model", blocks=6, last_kernel=2)(_ResidualOffsetModel)
register("offset20-model", blocks=8, last_kernel=3)(_ResidualOffsetModel)
register("offset10-model-mse-tanh", blocks=3, last_kernel=3, normalize=False, tanh=True)(
    _ResidualOffsetModel)
register("offset1-model-mse-tanh", hidden=_wide_output, normalize=False, tanh=True)(
    _PointwiseModel)
_CLIPS = (1000, 100, 50, 25, 20, 15, 10, 5, 1)
parametrize("offset1-model-mse-clip-{clip_min}-{clip_max}", clip_min=_CLIPS,
            clip_max=_CLIPS)(_ClippedModel)
_DEPTHS = tuple(range(1, 11))
parametrize("offset1-model-mse-v2-{n_intermediate_layers}layers{tanh}",
            n_intermediate_layers=_DEPTHS, tanh=("-tanh", ""))(_DeepPointwiseModel)
for _depth in _DEPTHS:
    for _tanh in ("-tanh", ""):
        register(f"offset1-model-mse-resnet-{_depth}layers{_tanh}", n_intermediate_layers=_depth,
                 tanh=_tanh, skip="pad")(_DeepPointwiseModel)
