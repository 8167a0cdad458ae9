"""Tests of ``cebra_pipe.models.time_major``: the GEMM inference path equals ``forward``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cebra_pipe.models
from cebra_pipe.data import Offset
from cebra_pipe.models import time_major
from cebra_pipe.models.model import ConvolutionalModelMixin, _OffsetModel
from cebra_pipe.solver import base

NEURONS, UNITS, OUTPUT = 7, 16, 4
# Models with one output per input step (not the resampling ones, not classifiers).
SLIDING = [name for name in cebra_pipe.models.get_options()
           if getattr(cebra_pipe.models.init(name, 2, 4, 2), "subsample", None) == 1]


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = cebra_pipe.models.init(name, NEURONS, UNITS, OUTPUT).eval()
    # non-zero biases everywhere, so a dropped bias or a mis-shifted tap shows
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model


@pytest.mark.parametrize("name", SLIDING)
def test_embed_equals_forward(name):
    model = _build(name)
    assert time_major.supports(model)
    segment = torch.randn(300, NEURONS)
    expected = model(segment.T[None])[0].T
    got = time_major.embed(model, segment)
    assert got.shape == (300 - len(model.get_offset()) + 1, OUTPUT)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_embed_without_normalisation_keeps_the_scale():
    model = _build("offset10-model-mse")
    segment = 3 * torch.randn(50, NEURONS)
    got = time_major.embed(model, segment)
    assert not torch.allclose(got.norm(dim=1), torch.ones(len(got)))
    torch.testing.assert_close(got, model(segment.T[None])[0].T, rtol=1e-5, atol=1e-5)


def test_embed_of_a_bias_free_convolution():
    model = _OffsetModel(nn.Conv1d(NEURONS, OUTPUT, 3, bias=False), num_input=NEURONS,
                         num_output=OUTPUT)
    model.subsample = 1
    segment = torch.randn(20, NEURONS)
    torch.testing.assert_close(time_major.embed(model, segment), model(segment.T[None])[0].T)


def _custom(*layers: nn.Module) -> _OffsetModel:
    class Custom(_OffsetModel, ConvolutionalModelMixin):
        def get_offset(self):
            return Offset(1, 2)
    return Custom(*layers, num_input=NEURONS, num_output=OUTPUT).eval()


@pytest.mark.parametrize("layers", [
    [nn.Conv1d(NEURONS, OUTPUT, 3, padding=1)],
    [nn.Conv1d(NEURONS, OUTPUT, 3, dilation=2)],
    [nn.Conv1d(NEURONS, OUTPUT, 1), nn.ReLU()],
    [nn.Conv1d(NEURONS, OUTPUT, 3), nn.BatchNorm1d(OUTPUT)],
], ids=["padding", "dilation", "relu", "batchnorm"])
def test_unknown_layers_are_not_translated(layers):
    assert not time_major.supports(_custom(*layers))


def test_subsampling_models_and_training_dropout_are_not_translated():
    assert not time_major.supports(_build("offset40-model-4x-subsample"))
    model = _build("offset36-model-dropout")
    assert time_major.supports(model)
    assert not time_major.supports(model.train())
    assert not time_major.supports(nn.Linear(3, 3))


def test_transform_recording_uses_the_gemm_path_on_cpu(monkeypatch):
    model = _build("offset10-model")
    calls = []
    embed = time_major.embed
    monkeypatch.setattr(time_major, "embed", lambda *a: calls.append(1) or embed(*a))
    recording = torch.randn(100, NEURONS)
    out = base.transform_recording(model, recording, pad=False, batch_size=40)
    assert len(calls) == 3
    torch.testing.assert_close(out, model(recording.T[None])[0].T, rtol=1e-5, atol=1e-5)


def test_transform_recording_falls_back_to_forward_for_unknown_layers(monkeypatch):
    model = _custom(nn.Conv1d(NEURONS, UNITS, 2), nn.ReLU(), nn.Conv1d(UNITS, OUTPUT, 1))
    monkeypatch.setattr(time_major, "embed", lambda *a: pytest.fail("GEMM path used"))
    recording = torch.randn(60, NEURONS)
    out = base.transform_recording(model, recording, pad=False, batch_size=None)
    torch.testing.assert_close(out, model(recording.T[None])[0].T)
