"""MultiobjectiveModel: one encoder's embedding as slices, one per objective."""

from __future__ import annotations

import doctest

import pytest
import torch

from cebra_pipe.models import Model, MultiobjectiveModel, init, multiobjective


@pytest.fixture
def encoder() -> Model:
    torch.manual_seed(0)
    return init("offset10-model", num_neurons=7, num_units=16, num_output=10)


def test_slices_are_the_encoder_features(encoder):
    windows = torch.randn(5, 7, 10)  # (batch, neurons, window)
    full = encoder(windows)
    overlapping = MultiobjectiveModel(encoder, dimensions=(4, 6), append_last_dimension=True)
    parts = overlapping(windows)
    assert [tuple(p.shape) for p in parts] == [(5, 4), (5, 6), (5, 10)]
    torch.testing.assert_close(parts[1], full[:, :6])
    separate = MultiobjectiveModel(encoder, dimensions=(4, 6, 10), output_mode="separate")
    parts = separate(windows)
    assert [tuple(p.shape) for p in parts] == [(5, 4), (5, 2), (5, 4)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full)
    assert separate.num_output == 10 and separate.get_offset() == encoder.get_offset()


def test_renormalized_slices_are_unit_vectors(encoder):
    parts = MultiobjectiveModel(encoder, (3, 10), renormalize=True,
                                output_mode="separate")(torch.randn(4, 7, 10))
    for part in parts:
        torch.testing.assert_close(part.norm(dim=1), torch.ones(4))


def test_gradients_reach_the_encoder_from_each_objective(encoder):
    model = MultiobjectiveModel(encoder, (3,), output_mode="separate",
                                append_last_dimension=True)
    first, second = model(torch.randn(4, 7, 10))
    (first.sum() + 0 * second.sum()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(dimensions=(4, 10), append_last_dimension=True), "must then stay below it"),
    (dict(dimensions=(4, 8)), r"largest of dimensions \(4, 8\) must be the encoder's "
                              r"num_output=10"),
    (dict(dimensions=(6, 4, 10)), "increasing positive feature counts"),
    (dict(dimensions=(4, 10), output_mode="nested"), "Unknown output_mode 'nested'"),
])
def test_bad_arguments_name_the_problem(encoder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiobjectiveModel(encoder, **kwargs)


def test_only_encoders_are_wrapped():
    with pytest.raises(ValueError, match="wraps a cebra_pipe.models.Model .* got Linear"):
        MultiobjectiveModel(torch.nn.Linear(3, 3), (3,))


def test_docstring_example_runs():
    result = doctest.testmod(multiobjective, optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed
