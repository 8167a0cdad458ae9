"""Tests for the Jacobian regulariser (solver hook) and the estimator option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jacrev, vmap

import cebra_pipe as cebra
from cebra_pipe.solver import regularizers


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((400, 10)).astype(np.float32),
            rng.uniform(size=(400, 1)).astype(np.float32))


def fit(data, checkpoint_dir=None, checkpoint_frequency=None, callback=None,
        callback_frequency=None, **kwargs) -> cebra.CEBRA:
    params = dict(model_architecture="offset5-model", batch_size=32, max_iterations=12,
                  output_dimension=3, num_hidden_units=8, time_offsets=2, device="cpu",
                  random_state=0)
    return cebra.CEBRA(**{**params, **kwargs}).fit(
        *data, checkpoint_dir=checkpoint_dir, checkpoint_frequency=checkpoint_frequency,
        callback=callback, callback_frequency=callback_frequency)


def test_schedule_is_off_then_ramps_linearly():
    reg = regularizers.init("jacobian", weight=2.0, start=10, ramp=4)
    assert [reg.weight_at(s) for s in (1, 10, 11, 12, 14, 100)] == [0, 0, 0.5, 1.0, 2.0, 2.0]
    assert regularizers.init("jacobian", weight=3.0).weight_at(1) == 3.0
    for bad in ({"weight": -1}, {"weight": 1, "start": -2}, {"weight": 1, "ramp": 1.5}):
        with pytest.raises(ValueError, match="jacobian regularizer"):
            regularizers.init("jacobian", **bad)


def test_penalty_is_the_exact_frobenius_norm():
    model = cebra.models.init("offset5-model", num_neurons=6, num_units=8, num_output=3)
    windows = torch.randn(7, 6, 5)
    jac = vmap(jacrev(lambda w: model(w[None])[0]))(windows)
    expected = jac.pow(2).sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(regularizers.jacobian_norm(model, windows), expected)


def test_off_is_unchanged_and_on_is_seeded(data):
    off = fit(data)
    none = fit(data, jacobian_regularization=None)
    np.testing.assert_array_equal(off.transform(data[0]), none.transform(data[0]))
    on = fit(data, jacobian_regularization={"weight": 0.5, "start": 2, "ramp": 4})
    again = fit(data, jacobian_regularization={"weight": 0.5, "start": 2, "ramp": 4})
    np.testing.assert_array_equal(on.transform(data[0]), again.transform(data[0]))
    assert not np.array_equal(on.transform(data[0]), off.transform(data[0]))
    # The first `start` steps are unregularised: the losses agree until then.
    assert on.solver_.history[:2] == off.solver_.history[:2]
    assert on.solver_.history[2:] != off.solver_.history[2:]


def test_regularisation_shrinks_the_jacobian(data):
    def norm(model):
        windows = torch.from_numpy(data[0]).unfold(0, len(model.offset_), 1)[:200]
        return float(regularizers.jacobian_norm(model.model_, windows).detach())

    plain = fit(data, max_iterations=60, learning_rate=3e-3)
    penalised = fit(data, max_iterations=60, learning_rate=3e-3, jacobian_regularization=5.0)
    assert norm(penalised) < 0.5 * norm(plain)


def test_resumed_training_continues_the_schedule(data, tmp_path):
    spec = {"weight": 0.5, "start": 3, "ramp": 6}
    whole = fit(data, jacobian_regularization=spec)

    def kill(step, solver):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(data, jacobian_regularization=spec, checkpoint_dir=tmp_path,
            checkpoint_frequency=3, callback=kill, callback_frequency=1)
    resumed = fit(data, jacobian_regularization=spec, checkpoint_dir=tmp_path,
                  checkpoint_frequency=3)
    np.testing.assert_array_equal(resumed.transform(data[0]), whole.transform(data[0]))


@pytest.mark.parametrize("value, match", [
    ("strong", "jacobian_regularization"),
    ({"weight": 1, "warmup": 3}, "jacobian_regularization"),
    ({"start": 3}, "jacobian_regularization"),
    (-1.0, "weight"),
])
def test_bad_settings_are_named(data, value, match):
    with pytest.raises(ValueError, match=match):
        fit(data, jacobian_regularization=value)


def test_multi_session_and_ensembles_refuse_it(data):
    with pytest.raises(ValueError, match="single-session"):
        fit(([data[0], data[0]], [data[1], data[1]]), jacobian_regularization=1.0)
    from cebra_pipe.sklearn.ensemble import fit_seeds

    with pytest.raises(ValueError, match="regularizer"):
        fit_seeds(dict(model_architecture="offset1-model", batch_size=16, max_iterations=2,
                       device="cpu", jacobian_regularization=1.0), *data, seeds=[0, 1],
                  backend="loop")


def test_saved_model_keeps_the_setting(data, tmp_path):
    model = fit(data, jacobian_regularization={"weight": 0.5, "start": 0, "ramp": 3})
    model.save(tmp_path / "m.pt")
    loaded = cebra.CEBRA.load(tmp_path / "m.pt")
    assert loaded.jacobian_regularization == {"weight": 0.5, "start": 0, "ramp": 3}
    np.testing.assert_array_equal(loaded.transform(data[0]), model.transform(data[0]))
