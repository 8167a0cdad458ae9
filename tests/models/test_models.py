"""Tests of ``cebra_pipe.models.model``: receptive fields, normalisation, registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cebra_pipe.data
import cebra_pipe.models
from cebra_pipe.data import Offset
from cebra_pipe.models.model import ClassifierModel, ConvolutionalModelMixin, _OffsetModel

ALL_MODELS = cebra_pipe.models.get_options()
# Classifiers return (features, scores); the shape tests below are for embedding models.
EMBEDDING_MODELS = [n for n in ALL_MODELS if not n.startswith("supervised")]
_CLIPS = (1000, 100, 50, 25, 20, 15, 10, 5, 1)
# The reference cebra 0.6.1's registered names, in its registration order.
REFERENCE_NAMES = [
    "offset10-model", "offset10-model-mse", "offset5-model", "offset1-model-mse",
    "offset1-model", "offset1-model-v2", "offset1-model-v3", "offset1-model-v4",
    "offset1-model-v5", "offset40-model-4x-subsample", "resample-model",
    "offset20-model-4x-subsample", "resample5-model", "offset4-model-2x-subsample",
    "resample1-model", "supervised10-model", "supervised1-model", "offset36-model",
    "offset36-model-dropout", "offset36-model-more-dropout", "offset40-model",
    "offset50-model", "offset15-model", "offset20-model", "offset10-model-mse-tanh",
    "offset1-model-mse-tanh",
    *(f"offset1-model-mse-clip-{a}-{b}" for a in _CLIPS for b in _CLIPS),
    *(f"offset1-model-mse-{kind}-{n}layers{tanh}" for kind in ("v2", "resnet")
      for n in range(1, 11) for tanh in ("-tanh", ""))]
# name -> receptive field (samples) of the reference's documented models.
RECEPTIVE_FIELDS = {"offset1-model": 1, "offset4-model-2x-subsample": 4, "offset5-model": 5,
                    "offset10-model": 10, "offset10-model-mse-tanh": 10, "offset15-model": 15,
                    "offset20-model": 20, "offset20-model-4x-subsample": 20,
                    "offset36-model": 36, "offset36-model-more-dropout": 36,
                    "offset40-model": 40, "offset40-model-4x-subsample": 40,
                    "offset50-model": 50, "supervised10-model": 10, "supervised1-model": 1}
NUM_NEURONS, NUM_UNITS, NUM_OUTPUT = 5, 8, 3


def _build(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return cebra_pipe.models.init(name, num_neurons=NUM_NEURONS, num_units=NUM_UNITS,
                                  num_output=NUM_OUTPUT, **kwargs).double().eval()


def test_model_list_is_not_trivial():
    assert len(ALL_MODELS) >= 10
    for name in ("offset1-model", "offset1-model-mse", "offset5-model", "offset10-model",
                 "offset10-model-mse", "offset36-model", "offset40-model-4x-subsample"):
        assert name in ALL_MODELS


@pytest.mark.parametrize("name", EMBEDDING_MODELS)
def test_receptive_field_equals_offset(name):
    model = _build(name)
    length = len(model.get_offset())
    inp = torch.randn(2, NUM_NEURONS, length, dtype=torch.float64, requires_grad=True)
    out = model(inp)
    # exactly one output step per window, squeezed to (batch, num_output)
    assert out.shape == (2, NUM_OUTPUT)
    # the single output depends on the first and the last sample of the window
    out[0].sum().backward()
    grad = inp.grad[0].abs().sum(0)
    assert grad[0] > 0, f"{name}: output ignores the first sample of its window"
    assert grad[-1] > 0, f"{name}: output ignores the last sample of its window"
    assert torch.all(inp.grad[1] == 0), "batch elements must not interact"
    # one sample shorter cannot produce an output
    shorter = torch.randn(2, NUM_NEURONS, length - 1, dtype=torch.float64)
    try:
        short_out = model(shorter)
    except RuntimeError:
        return
    assert short_out.dim() == 3 and short_out.shape[-1] == 0, (
        f"{name}: an input of {length - 1} samples gave output {tuple(short_out.shape)}")


@pytest.mark.parametrize("name", EMBEDDING_MODELS)
def test_sliding_over_a_recording(name):
    model = _build(name)
    length = len(model.get_offset())
    subsample = getattr(model, "subsample", 1)
    assert isinstance(model, ConvolutionalModelMixin)
    time = length + 8 * subsample
    recording = torch.randn(1, NUM_NEURONS, time, dtype=torch.float64)
    out = model(recording)
    assert out.shape == (1, NUM_OUTPUT, (time - length) // subsample + 1)
    # every output equals the embedding of its own window
    for k in (0, out.shape[-1] - 1):
        start = k * subsample
        window = recording[..., start:start + length]
        torch.testing.assert_close(out[0, :, k], model(window)[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", EMBEDDING_MODELS)
def test_normalisation(name):
    model = _build(name)
    length = len(model.get_offset())
    out = model(3 * torch.randn(16, NUM_NEURONS, length, dtype=torch.float64))
    norms = out.norm(dim=1)
    # As in the reference, every "-mse" model (with or without a bound) is unnormalised.
    if "-mse" in name:
        assert model.normalize is False
        assert not torch.allclose(norms, torch.ones_like(norms), atol=1e-3)
    else:
        assert model.normalize is True
        torch.testing.assert_close(norms, torch.ones_like(norms))


def test_offsets_of_named_models():
    for name, length in RECEPTIVE_FIELDS.items():
        assert len(_build(name).get_offset()) == length, name
    assert _build("offset5-model").get_offset() == Offset(2, 3)
    assert _build("offset15-model").get_offset() == Offset(7, 8)


def test_the_reference_names_in_its_order():
    assert len(REFERENCE_NAMES) == 147
    assert ALL_MODELS[:147] == REFERENCE_NAMES
    assert cebra_pipe.models.get_options("offset*", limit=4) == [
        "offset10-model", "offset10-model-mse", "offset5-model", "offset1-model-mse"]


@pytest.mark.parametrize("name", ["offset10-model", "offset1-model", "offset1-model-mse",
                                  "offset40-model-4x-subsample"])
def test_net_is_the_whole_model(name):
    model = _build(name)
    window = torch.randn(3, NUM_NEURONS, len(model.get_offset()), dtype=torch.float64)
    torch.testing.assert_close(model.net(window), model(window))
    assert model.net(window).shape == (3, NUM_OUTPUT)


@pytest.mark.parametrize("name,low,high", [("offset1-model-mse-clip-5-1", -5.0, 1.0),
                                           ("offset1-model-mse-tanh", -1.0, 1.0),
                                           ("offset10-model-mse-tanh", -1.0, 1.0),
                                           ("offset1-model-mse-v2-3layers-tanh", -1.0, 1.0)])
def test_bounded_outputs(name, low, high):
    model = _build(name)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Conv1d):
                layer.weight.mul_(50.0)  # large outputs, so that the bound is reached
        out = model(torch.randn(256, NUM_NEURONS, len(model.get_offset()),
                                dtype=torch.float64))
    assert out.min() >= low and out.max() <= high
    assert out.min() < 0.9 * low and out.max() > 0.9 * high


def _zero_weights(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Conv1d):
                layer.weight.zero_()
                layer.bias.zero_()
    return model


def test_families_differ_in_depth_and_skip_paths():
    shallow, deep = (_build(f"offset1-model-mse-v2-{n}layers") for n in (1, 4))
    extra = sum(p.numel() for p in deep.parameters()) - sum(
        p.numel() for p in shallow.parameters())
    assert extra == 3 * (NUM_UNITS * NUM_UNITS + NUM_UNITS)  # independent weights per layer
    plain = _zero_weights(_build("offset1-model-mse-v2-2layers"))
    resnet = _zero_weights(_build("offset1-model-mse-resnet-2layers"))
    inp = torch.randn(4, NUM_NEURONS, 1, dtype=torch.float64)
    gelu = torch.nn.functional.gelu
    # With every weight zero the skip paths still carry the input (zero-padded to
    # num_units, cropped to num_units // 2) through the four GELUs; the plain MLP
    # carries nothing.
    hidden = resnet.net[:-2](inp)
    assert hidden.shape == (4, NUM_UNITS // 2, 1)
    torch.testing.assert_close(hidden, gelu(gelu(gelu(gelu(inp[:, :NUM_UNITS // 2])))))
    assert torch.count_nonzero(plain.net[:-2](inp)) == 0


@pytest.mark.parametrize("name,factor", [("offset40-model-4x-subsample", 4),
                                         ("offset20-model-4x-subsample", 4),
                                         ("offset4-model-2x-subsample", 2)])
def test_resample_models(name, factor):
    model = _build(name)
    assert model.resample_factor == factor == model.subsample
    length = len(model.get_offset())
    for time in (100, 430):
        out = model(torch.randn(2, NUM_NEURONS, time, dtype=torch.float64))
        assert out.shape == (2, NUM_OUTPUT, (time - length) // factor + 1)


@pytest.mark.parametrize("name", ["supervised10-model", "supervised1-model"])
def test_classifier_models(name):
    model = _build(name)
    assert isinstance(model, ClassifierModel)
    window = torch.randn(7, NUM_NEURONS, len(model.get_offset()), dtype=torch.float64)
    with pytest.raises(RuntimeError, match="set_output_num"):
        model(window)
    model.set_output_num(12)
    model.double()
    features, scores = model(window)
    assert features.shape == (7, NUM_OUTPUT) and scores.shape == (7, 12)
    with pytest.raises(RuntimeError, match="override=True"):
        model.set_output_num(5)
    model.set_output_num(5, override=True)
    assert model.classifier.out_features == 5


def test_too_few_units_is_a_clear_error():
    with pytest.raises(ValueError, match="num_units"):
        cebra_pipe.models.init("offset1-model", num_neurons=3, num_units=1, num_output=2)


def test_dropout_model_is_stochastic_only_in_training():
    model = _build("offset36-model-dropout")
    inp = torch.randn(4, NUM_NEURONS, 36, dtype=torch.float64)
    torch.testing.assert_close(model(inp), model(inp))
    model.train()
    assert not torch.allclose(model(inp), model(inp))


def test_get_options_limit_and_glob():
    four = cebra_pipe.models.get_options("offset*", limit=4)
    assert len(four) == 4
    assert all(n.startswith("offset") for n in four)
    mse = cebra_pipe.models.get_options("*-mse")
    assert set(mse) == {n for n in ALL_MODELS if n.endswith("-mse")}
    assert "offset1-model-mse" in mse and "offset10-model-mse" in mse
    assert cebra_pipe.models.get_options("offset1-model?v2") == ["offset1-model-v2"]
    assert cebra_pipe.models.get_options("*subsample") == [
        n for n in ALL_MODELS if n.endswith("subsample")]
    assert cebra_pipe.models.get_options("no-such-*") == []
    assert cebra_pipe.models.get_options("offset*", limit=0) == []


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError) as info:
        cebra_pipe.models.init("offset10-modle", num_neurons=3, num_units=4, num_output=2)
    message = str(info.value)
    assert "offset10-modle" in message
    assert "offset10-model" in message
    assert "Did you mean" in message


def test_register_custom_model_from_the_guide():
    # The guide's example, verbatim except for the package name.
    from torch import nn  # noqa: I001
    import cebra_pipe as cebra
    import cebra_pipe.models
    import cebra_pipe.data
    from cebra_pipe.models.model import _OffsetModel, ConvolutionalModelMixin

    @cebra.models.register("my-model")  # --> add that line to register the model!
    class MyModel(_OffsetModel, ConvolutionalModelMixin):

        def __init__(self, num_neurons, num_units, num_output, normalize=True):
            super().__init__(
                nn.Conv1d(num_neurons, num_units, 2),
                nn.GELU(),
                nn.Conv1d(num_units, num_units, 40),
                nn.GELU(),
                nn.Conv1d(num_units, num_output, 5),
                num_input=num_neurons,
                num_output=num_output,
                normalize=normalize,
            )

        # ... and you can also redefine the forward method,
        # as you would for a typical pytorch model

        def get_offset(self):
            return cebra.data.Offset(22, 23)

    # Access the model
    print(cebra.models.get_options('my-model'))

    try:
        assert cebra.models.get_options("my-model") == ["my-model"]
        model = cebra.models.init("my-model", num_neurons=4, num_units=6, num_output=3)
        assert isinstance(model, MyModel)
        assert len(model.get_offset()) == 45 == len(Offset(22, 23))
        inp = torch.randn(2, 4, 45, requires_grad=True)
        out = model(inp)
        assert out.shape == (2, 3)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
        out[0].sum().backward()
        assert inp.grad[0, :, 0].abs().sum() > 0 and inp.grad[0, :, -1].abs().sum() > 0
        with pytest.raises(RuntimeError):
            model(torch.randn(2, 4, 44))
        # registering the same name again needs override=True
        with pytest.raises(ValueError, match="already registered"):
            cebra.models.register("my-model")(MyModel)
    finally:
        cebra.models.model._registry._factories.pop("my-model", None)
        cebra.models.model._registry._defaults.pop("my-model", None)
    assert not cebra.models.is_registered("my-model")


def test_parametrize_registers_a_template_family():
    @cebra_pipe.models.parametrize("test-width{width}-model", width=[3, 7])
    class WidthModel(_OffsetModel, ConvolutionalModelMixin):
        def __init__(self, num_neurons, num_units, num_output, normalize=True, *, width):
            super().__init__(nn.Conv1d(num_neurons, num_output, width),
                             num_input=num_neurons, num_output=num_output,
                             normalize=normalize)
            self.width = width

        def get_offset(self):
            return Offset(self.width // 2, self.width - self.width // 2)

    try:
        assert cebra_pipe.models.get_options("test-width*") == ["test-width3-model",
                                                                 "test-width7-model"]
        for width in (3, 7):
            model = cebra_pipe.models.init(f"test-width{width}-model", num_neurons=2,
                                           num_units=4, num_output=2)
            assert model.width == width
            assert len(model.get_offset()) == width
            assert model(torch.randn(5, 2, width)).shape == (5, 2)
    finally:
        for width in (3, 7):
            cebra_pipe.models.model._registry._factories.pop(f"test-width{width}-model", None)
            cebra_pipe.models.model._registry._defaults.pop(f"test-width{width}-model", None)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_model_rejects_bad_dimensions():
    with pytest.raises(ValueError, match="num_input"):
        cebra_pipe.models.init("offset10-model", num_neurons=0, num_units=4, num_output=2)


@pytest.mark.parametrize("name", cebra_pipe.models.get_options())
def test_every_model_exposes_its_feature_encoder(name):
    model = cebra_pipe.models.init(name, num_neurons=5, num_units=4, num_output=3)
    assert isinstance(model, cebra_pipe.models.HasFeatureEncoder)
    window = torch.randn(2, 5, len(model.get_offset()))
    out = model.feature_encoder(window)
    assert out.shape[:2] == (2, 3)
