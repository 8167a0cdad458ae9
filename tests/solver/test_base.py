"""The solvers' public seams (``solver/base.py``): ``encoder``, ``session_loss``,
``evaluation_loss`` and ``score_batches``, which the metrics use instead of private
methods or a throwaway solver."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cebra_pipe.models
import cebra_pipe.solver
from cebra_pipe.data import DatasetCollection, TensorDataset
from cebra_pipe.data.multi_session import ContinuousMultiSessionDataLoader
from cebra_pipe.data.single_session import ContinuousDataLoader, HybridDataLoader
from cebra_pipe.models import criterions


def _model(neurons: int, seed: int, name: str = "offset10-model") -> torch.nn.Module:
    torch.manual_seed(seed)
    return cebra_pipe.models.init(name, num_neurons=neurons, num_units=16, num_output=3)


def _data(n: int, neurons: int, seed: int) -> TensorDataset:
    rng = np.random.default_rng(seed)
    return TensorDataset(rng.normal(size=(n, neurons)).astype(np.float32),
                         continuous=np.cumsum(rng.normal(0, 0.05, (n, 2)), 0).astype(np.float32))


def _solver(name: str, model: torch.nn.Module):
    criterion = criterions.FixedCosineInfoNCE(temperature=1.0)
    return cebra_pipe.solver.init(name, model=model, criterion=criterion,
                                  optimizer=torch.optim.Adam(model.parameters(), lr=1e-3))


def test_score_batches_is_the_eval_mode_loss_and_restores_training_mode():
    model = _model(6, seed=0, name="offset36-model-dropout")  # eval mode matters
    solver = _solver("single-session", model)
    data = _data(400, 6, 0)
    data.configure_for(model)
    batches = list(ContinuousDataLoader(data, 3, 32, conditional="time_delta", seed=0))
    model.train()
    scores = solver.score_batches(batches)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        want = [float(solver.compute_loss(b)[0]) for b in batches]
    np.testing.assert_allclose(scores, want, rtol=1e-6)
    assert solver.encoder() is model and solver.encoder(0) is model


def test_hybrid_solver_scores_the_behaviour_loss_only():
    model = _model(6, seed=0)
    solver = _solver("single-session-hybrid", model)
    data = _data(400, 6, 0)
    data.configure_for(model)
    batch = next(iter(HybridDataLoader(data, 1, 32, conditional="time_delta", seed=0)))
    with torch.no_grad():
        behaviour = solver.session_loss(model, batch)[0]
        total = solver.compute_loss(batch)[0]
        scored = solver.evaluation_loss(batch)
    assert float(scored) == pytest.approx(float(behaviour))
    assert float(total) > float(behaviour)  # the training loss adds the time term


def test_multi_session_solver_scores_one_session_with_its_encoder():
    encoders = torch.nn.ModuleList([_model(6, seed=0), _model(8, seed=1)])
    solver = _solver("multi-session", encoders)
    assert solver.encoder(1) is encoders[1]
    with pytest.raises(ValueError, match="pass session_id"):
        solver.encoder(None)
    with pytest.raises(ValueError, match="out of range"):
        solver.encoder(2)
    # one session's single-session batch, scored by that session's encoder
    data = _data(400, 8, 1)
    data.configure_for(encoders[1])
    batches = list(ContinuousDataLoader(data, 2, 32, conditional="time_delta", seed=0))
    alone = _solver("single-session", encoders[1])
    np.testing.assert_allclose(solver.score_batches(batches, session_id=1),
                               alone.score_batches(batches), rtol=1e-6)
    # without a session: multi-session batches, every encoder scoring its own session
    collection = DatasetCollection(_data(400, 6, 0), _data(400, 8, 1))
    collection.configure_for(list(encoders))
    multi = list(ContinuousMultiSessionDataLoader(collection, 2, 32, seed=0))
    with torch.no_grad():
        want = [float(solver.compute_loss(b)[0]) for b in multi]
    np.testing.assert_allclose(solver.score_batches(multi), want, rtol=1e-6)


def test_an_optimizer_factory_is_called_when_training_starts_with_the_loaded_state():
    """A factory optimizer is built on the first step, over the model's and criterion's
    parameters, with a state loaded before; a mismatched state is refused at load."""
    calls: list[int] = []

    def factory(parameters):
        calls.append(len(parameters))
        return torch.optim.Adam(parameters, lr=1e-3)

    data = _data(400, 6, 0)
    trained = _solver("single-session", _model(6, seed=0))
    data.configure_for(trained.model)
    trained.fit(ContinuousDataLoader(data, 3, 32, conditional="time_delta", seed=0))

    solver = cebra_pipe.solver.init("single-session", model=_model(6, seed=1),
                                    criterion=criterions.FixedCosineInfoNCE(temperature=1.0),
                                    optimizer=factory)
    solver.load_state_dict(trained.state_dict())
    solver.transform(data.neural)
    assert calls == []  # embedding needs no optimizer
    assert solver.state_dict()["optimizer"]["state"][0]["step"] == 3

    solver.fit(ContinuousDataLoader(data, 2, 32, conditional="time_delta", seed=1))
    assert calls == [len(solver.trained_parameters())]
    assert solver.optimizer.state_dict()["state"][0]["step"] == 5  # continued, not fresh

    state = trained.state_dict()
    state["optimizer"]["param_groups"][0]["params"].pop()
    fresh = cebra_pipe.solver.init("single-session", model=_model(6, seed=1),
                                   criterion=criterions.FixedCosineInfoNCE(temperature=1.0),
                                   optimizer=factory)
    with pytest.raises(ValueError, match="optimizer state covers"):
        fresh.load_state_dict(state)
