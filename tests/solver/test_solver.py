"""Tests of the solvers: the guide's Torch quick start, determinism, checkpoints,
transform, multi-session and hybrid training, latent recovery and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression

import cebra_pipe
import cebra_pipe.models
import cebra_pipe.solver
from cebra_pipe.data import DatasetCollection, TensorDataset
from cebra_pipe.data.multi_session import ContinuousMultiSessionDataLoader
from cebra_pipe.data.single_session import (
    ContinuousDataLoader,
    HybridDataLoader,
)
from cebra_pipe.models import criterions
from cebra_pipe.solver import resolve_device


# -- helpers -------------------------------------------------------------------------------
def _walk(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.05, (n, d)), 0).astype(np.float32)


def _neural(n: int = 600, neurons: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, neurons)).astype(np.float32)


def _solver(name: str = "offset10-model", neurons: int = 6, num_output: int = 3,
            criterion=None, solver: str = "single-session", init_seed: int = 0, lr=1e-3):
    torch.manual_seed(init_seed)
    model = cebra_pipe.models.init(name, num_neurons=neurons, num_units=16,
                                   num_output=num_output)
    crit = criterion if criterion is not None else criterions.LearnableCosineInfoNCE(1.0)
    opt = torch.optim.Adam(list(model.parameters()) + list(crit.parameters()), lr=lr)
    return cebra_pipe.solver.init(solver, model=model, criterion=crit, optimizer=opt)


def _continuous_setup(steps: int, seed: int = 0, init_seed: int = 0,
                      model: str = "offset10-model", **loader_kw):
    data = TensorDataset(_neural(), continuous=_walk(600, 2, 1))
    solver = _solver(model, init_seed=init_seed)
    data.configure_for(solver.model)
    loader = ContinuousDataLoader(data, steps, 64, conditional="time_delta", time_offset=5,
                                  seed=seed, **loader_kw)
    return solver, loader, data


def _weights(solver) -> dict[str, torch.Tensor]:
    state = {f"model.{k}": v for k, v in solver.model.state_dict().items()}
    state.update({f"crit.{k}": v for k, v in solver.criterion.state_dict().items()})
    return state


def _assert_same_weights(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


# -- the guide's Torch quick start ---------------------------------------------------------
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_guide_torch_quick_start(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    # "Create a CEBRA workspace" (verbatim)
    # Create a .npz file
    import numpy as np

    X = np.random.normal(0,1,(100,3))
    X_new = np.random.normal(0,1,(100,4))
    np.savez("neural_data", neural = X, new_neural = X_new)

    # Create a .h5 file, containing a pd.DataFrame
    import pandas as pd

    X_continuous = np.random.normal(0,1,(100,3))
    X_discrete = np.random.randint(0,10,(100, ))
    df = pd.DataFrame(np.array(X_continuous), columns=["continuous1", "continuous2", "continuous3"])
    df["discrete"] = X_discrete
    df.to_hdf("auxiliary_behavior_data.h5", key="auxiliary_variables")

    # "Model training using the Torch API" (verbatim, cebra -> cebra_pipe)
    import numpy as np  # noqa: I001
    import cebra_pipe.datasets
    import torch

    if torch.cuda.is_available():
        device = "cuda"
    else:
        device = "cpu"

    neural_data = cebra_pipe.load_data(file="neural_data.npz", key="neural")

    discrete_label = cebra_pipe.load_data(
        file="auxiliary_behavior_data.h5", key="auxiliary_variables", columns=["discrete"],
    )

    # 1. Define a CEBRA-ready dataset
    input_data = cebra_pipe.data.TensorDataset(
        torch.from_numpy(neural_data).type(torch.FloatTensor),
        discrete=torch.from_numpy(np.array(discrete_label[:, 0])).type(torch.LongTensor),
    ).to(device)

    # 2. Define a CEBRA model
    neural_model = cebra_pipe.models.init(
        name="offset10-model",
        num_neurons=input_data.input_dimension,
        num_units=32,
        num_output=2,
    ).to(device)

    input_data.configure_for(neural_model)

    # 3. Define the Loss Function Criterion and Optimizer
    crit = cebra_pipe.models.criterions.LearnableCosineInfoNCE(
        temperature=1,
    ).to(device)

    opt = torch.optim.Adam(
        list(neural_model.parameters()) + list(crit.parameters()),
        lr=0.001,
        weight_decay=0,
    )

    # 4. Initialize the CEBRA model
    solver = cebra_pipe.solver.init(
        name="single-session",
        model=neural_model,
        criterion=crit,
        optimizer=opt,
        tqdm_on=True,
    ).to(device)

    # 5. Define Data Loader
    loader = cebra_pipe.data.single_session.DiscreteDataLoader(
        dataset=input_data, num_steps=10, batch_size=200, prior="uniform"
    )

    # 6. Fit Model
    solver.fit(loader=loader)

    # 7. Transform Embedding
    train_batches = np.lib.stride_tricks.sliding_window_view(
        neural_data, neural_model.get_offset().__len__(), axis=0
    )

    x_train_emb = solver.transform(
        torch.from_numpy(train_batches[:]).type(torch.FloatTensor).to(device)
    ).to(device)

    # 8. Plot Embedding
    cebra_pipe.plot_embedding(
        x_train_emb.cpu(),
        discrete_label[neural_model.get_offset().__len__() - 1 :, 0],
        markersize=10,
    )

    # checks
    assert neural_data.shape == (100, 3) and discrete_label.shape == (100, 1)
    assert len(solver.history) == 10 and all(np.isfinite(solver.history))
    assert len(solver.log["temperature"]) == 10
    assert x_train_emb.shape == (91, 2)
    torch.testing.assert_close(x_train_emb.norm(dim=1), torch.ones(91))
    # the windowed path equals sliding the model over the recording
    full = solver.transform(torch.from_numpy(neural_data).float(), pad_before_transform=False)
    torch.testing.assert_close(full, x_train_emb, rtol=1e-5, atol=1e-5)
    plt.close("all")


# -- determinism and checkpoints -----------------------------------------------------------
def test_seeded_runs_are_bit_identical():
    runs = []
    for _ in range(2):
        solver, loader, data = _continuous_setup(12, seed=3, init_seed=4)
        solver.fit(loader)
        runs.append((solver, solver.transform(data.neural)))
    (a, emb_a), (b, emb_b) = runs
    assert a.history == b.history and len(a.history) == 12
    assert a.log == b.log
    assert torch.equal(emb_a, emb_b)
    _assert_same_weights(a, b)
    other, loader, _ = _continuous_setup(12, seed=5, init_seed=4)
    other.fit(loader)
    assert other.history != a.history


def test_history_and_log():
    solver, loader, _ = _continuous_setup(30)
    solver.sync_every = 7  # flushes at 7, 14, ... and at the end
    solver.fit(loader)
    assert len(solver.history) == 30
    for key in ("pos", "neg", "total", "temperature"):
        assert len(solver.log[key]) == 30 and np.isfinite(solver.log[key]).all()
    np.testing.assert_allclose(solver.log["total"], solver.history)
    np.testing.assert_allclose(np.add(solver.log["pos"], solver.log["neg"]), solver.history,
                               rtol=1e-5, atol=1e-5)


class _Killed(Exception):
    pass


def _kill_at(step_to_die: int):
    def callback(*args):
        (step,) = [a for a in args if isinstance(a, int)]  # callback(step, solver)
        if step == step_to_die:
            raise _Killed
    return callback


@pytest.mark.parametrize("model", ["offset10-model", "offset36-model-dropout"])
def test_checkpoint_resume_matches_uninterrupted_run(tmp_path, model):
    total, every = 30, 10
    # the uninterrupted reference run (also checkpointing: writing must not perturb it)
    ref, loader, _ = _continuous_setup(total, seed=7, model=model)
    ref.fit(loader, checkpoint_dir=tmp_path / "ref", checkpoint_frequency=every)
    assert [p.name for p in (tmp_path / "ref").glob("checkpoint_*.pt")] == [
        "checkpoint_00000030.pt"]
    plain, loader, _ = _continuous_setup(total, seed=7, model=model)
    plain.fit(loader)
    assert plain.history == ref.history
    _assert_same_weights(plain, ref)

    # a run killed at step 17: the last checkpoint is the one of step 10
    killed, loader, _ = _continuous_setup(total, seed=7, model=model)
    with pytest.raises(_Killed):
        killed.fit(loader, checkpoint_dir=tmp_path / "run", checkpoint_frequency=every,
                   callback=_kill_at(17), callback_frequency=1)
    assert [p.name for p in (tmp_path / "run").glob("checkpoint_*.pt")] == [
        "checkpoint_00000010.pt"]
    # a new process: other initial weights, another loader seed; resume restores all
    resumed, loader, _ = _continuous_setup(total, seed=123, init_seed=99, model=model)
    resumed.fit(loader, checkpoint_dir=tmp_path / "run", checkpoint_frequency=every,
                resume=True)
    assert resumed.history == ref.history
    assert resumed.log == ref.log
    _assert_same_weights(resumed, ref)
    # Adam's moments were restored too
    for pa, pb in zip(resumed.optimizer.state_dict()["state"].values(),
                      ref.optimizer.state_dict()["state"].values()):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"])


def test_resume_after_a_shorter_run(tmp_path):
    # "fit a loader with fewer steps", then continue with the full one
    ref, loader, _ = _continuous_setup(20, seed=8)
    ref.fit(loader)
    short, loader, _ = _continuous_setup(12, seed=8)
    short.fit(loader, checkpoint_dir=tmp_path, checkpoint_frequency=4)
    resumed, loader, _ = _continuous_setup(20, seed=0, init_seed=1)
    resumed.fit(loader, checkpoint_dir=tmp_path, checkpoint_frequency=4, resume=True)
    assert resumed.history == ref.history
    _assert_same_weights(resumed, ref)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    a, loader, _ = _continuous_setup(5, seed=2)
    a.fit(loader, checkpoint_dir=tmp_path / "empty", checkpoint_frequency=100, resume=True)
    b, loader, _ = _continuous_setup(5, seed=2)
    b.fit(loader)
    assert a.history == b.history


def test_multi_session_checkpoint_resume(tmp_path):
    def setup(seed, init_seed):
        data = _collection()
        solver = _multi_solver(data, init_seed)
        loader = ContinuousMultiSessionDataLoader(data, 12, 32, time_offset=5, seed=seed)
        return solver, loader

    ref, loader = setup(4, 0)
    ref.fit(loader)
    killed, loader = setup(4, 0)
    with pytest.raises(_Killed):
        killed.fit(loader, checkpoint_dir=tmp_path, checkpoint_frequency=5,
                   callback=_kill_at(8), callback_frequency=1)
    resumed, loader = setup(50, 3)
    resumed.fit(loader, checkpoint_dir=tmp_path, checkpoint_frequency=5, resume=True)
    assert resumed.history == ref.history
    _assert_same_weights(resumed, ref)


# -- transform -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["offset10-model", "offset1-model", "offset5-model",
                                  "offset40-model-4x-subsample"])
def test_transform_recording(name):
    solver = _solver(name)
    offset = solver.model.get_offset()
    length = len(offset)
    recording = torch.from_numpy(_neural(n=150))
    padded = solver.transform(recording)
    assert padded.shape == (150, 3)
    assert padded.dtype == torch.float32
    torch.testing.assert_close(padded.norm(dim=1), torch.ones(150))
    unpadded = solver.transform(recording, pad_before_transform=False)
    assert unpadded.shape == (150 - length + 1, 3)
    # interior rows of the padded output are the unpadded ones, shifted by offset.left
    torch.testing.assert_close(padded[offset.left:offset.left + len(unpadded)], unpadded,
                               rtol=1e-5, atol=1e-5)
    # batched == unbatched
    for batch_size in (1, 7, 64):
        torch.testing.assert_close(solver.transform(recording, batch_size=batch_size), padded,
                                   rtol=1e-5, atol=1e-5)
    # windowed input (batch, neurons, window): the guide's sliding_window_view path
    windows = np.lib.stride_tricks.sliding_window_view(recording.numpy(), length, axis=0)
    windowed = solver.transform(torch.from_numpy(windows.copy()))
    torch.testing.assert_close(windowed, unpadded, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(solver.transform(torch.from_numpy(windows.copy()), batch_size=5),
                               unpadded, rtol=1e-5, atol=1e-5)
    # the first padded row embeds the recording's first sample repeated on the left
    first = torch.cat([recording[:1].expand(offset.left, -1), recording[:length - offset.left]])
    torch.testing.assert_close(padded[0], solver.transform(first.T[None])[0],
                               rtol=1e-5, atol=1e-5)
    # transform leaves the training mode alone
    assert solver.model.training


def test_transform_errors():
    solver = _solver("offset10-model")
    with pytest.raises(ValueError, match="receptive field"):
        solver.transform(torch.randn(5, 6), pad_before_transform=False)
    with pytest.raises(ValueError, match="transform expects"):
        solver.transform(torch.randn(6))
    # short recordings work with padding
    assert solver.transform(torch.randn(5, 6)).shape == (5, 3)


def test_transform_is_deterministic_with_dropout():
    solver = _solver("offset36-model-dropout")
    recording = torch.from_numpy(_neural(n=80))
    torch.testing.assert_close(solver.transform(recording), solver.transform(recording))


# -- multi-session -------------------------------------------------------------------------
def _collection():
    return DatasetCollection(*[TensorDataset(_neural(400 + 50 * s, 4 + s, seed=s),
                                             continuous=_walk(400 + 50 * s, 2, 10 + s))
                               for s in range(3)])


def _multi_solver(data, init_seed=0, lr=3e-3):
    torch.manual_seed(init_seed)
    models = torch.nn.ModuleList([
        cebra_pipe.models.init("offset10-model", num_neurons=n, num_units=16, num_output=3)
        for n in data.input_dimension])
    data.configure_for(models)
    crit = criterions.FixedCosineInfoNCE(temperature=0.5)
    opt = torch.optim.Adam(models.parameters(), lr=lr)
    return cebra_pipe.solver.init("multi-session", model=models, criterion=crit, optimizer=opt)


def test_multi_session_solver_trains_and_needs_session_id():
    data = _collection()
    solver = _multi_solver(data)
    loader = ContinuousMultiSessionDataLoader(data, 60, 64, time_offset=5, seed=0)
    solver.fit(loader)
    assert len(solver.history) == 60 and np.isfinite(solver.history).all()
    # every reference is contrasted with 3 x 64 shared negatives
    assert solver.history[0] == pytest.approx(np.log(3 * 64) + 1 / 0.5, abs=1.0)
    assert np.mean(solver.history[-10:]) < np.mean(solver.history[:10]) - 0.05
    for s, ds in enumerate(data):
        emb = solver.transform(ds.neural, session_id=s)
        assert emb.shape == (len(ds), 3)
    with pytest.raises(ValueError, match="session_id"):
        solver.transform(data.get_session(0).neural)
    with pytest.raises(ValueError, match="session_id=3"):
        solver.transform(data.get_session(0).neural, session_id=3)
    with pytest.raises(ValueError, match="session_id=-1"):
        solver.transform(data.get_session(0).neural, session_id=-1)
    with pytest.raises(TypeError, match="ModuleList"):
        cebra_pipe.solver.init("multi-session", model=solver.model[0],
                               criterion=solver.criterion, optimizer=solver.optimizer)


# -- hybrid --------------------------------------------------------------------------------
def test_hybrid_solver_trains():
    data = TensorDataset(_neural(), continuous=_walk(600, 2, 1))
    solver = _solver(solver="single-session-hybrid", lr=3e-3)
    data.configure_for(solver.model)
    loader = HybridDataLoader(data, 40, 64, time_offset=5, seed=0)
    solver.fit(loader)
    assert len(solver.history) == 40 and np.isfinite(solver.history).all()
    # two InfoNCE terms: chance is 2 log(batch)
    assert solver.history[0] == pytest.approx(2 * np.log(64), abs=0.5)
    assert np.mean(solver.history[-5:]) < np.mean(solver.history[:5])
    # a plain batch lacks time positives
    plain = ContinuousDataLoader(data, 1, 16, seed=0)
    with pytest.raises(ValueError, match="time positives"):
        solver.compute_loss(next(iter(plain)))


# -- temperature ---------------------------------------------------------------------------
def test_temperature_log():
    solver, loader, _ = _continuous_setup(40)
    solver.optimizer.param_groups[0]["lr"] = 1e-2
    solver.fit(loader)
    temps = solver.log["temperature"]
    assert len(temps) == 40
    assert temps[0] != temps[-1]  # learnable: it moves
    assert temps[-1] == pytest.approx(solver.criterion.temperature, rel=1e-6)
    fixed = _solver(criterion=criterions.FixedCosineInfoNCE(temperature=0.3))
    data = TensorDataset(_neural(), continuous=_walk(600, 2, 1))
    data.configure_for(fixed.model)
    fixed.fit(ContinuousDataLoader(data, 5, 32, seed=0))
    assert fixed.log["temperature"] == pytest.approx([0.3] * 5)


def test_validation_history():
    solver, loader, data = _continuous_setup(20)
    valid = ContinuousDataLoader(data, 2, 64, conditional="time_delta", seed=9)
    solver.fit(loader, valid, valid_frequency=10)
    assert [s for s, _ in solver.valid_history] == [10, 20]
    assert all(np.isfinite(v) for _, v in solver.valid_history)


# -- latent recovery -----------------------------------------------------------------------
def _latent_dataset(n: int = 3000, seed: int = 0):
    """A smooth 2-D random walk in [-1, 1]^2 seen through a random nonlinear map.

    40 "neurons" = tanh(random mix of sin(random projections of the latent)) + noise;
    a linear readout of the raw neurons explains only ~85% of the latent's variance.
    """
    rng = np.random.default_rng(seed)
    latent = np.zeros((n, 2))
    velocity = np.zeros(2)
    for t in range(1, n):
        velocity = 0.95 * velocity + 0.015 * rng.normal(size=2)
        latent[t] = np.clip(latent[t - 1] + velocity, -1, 1)
    w1 = rng.normal(size=(2, 64)) * 6
    b1 = rng.uniform(-np.pi, np.pi, size=64)
    w2 = rng.normal(size=(64, 40)) / 4
    neural = np.tanh(np.sin(latent @ w1 + b1) @ w2) + 0.05 * rng.normal(size=(n, 40))
    return latent.astype(np.float32), neural.astype(np.float32)


def _r2(embedding: np.ndarray, latent: np.ndarray) -> float:
    return LinearRegression().fit(embedding, latent).score(embedding, latent)


@pytest.mark.parametrize("name", ["offset1-model", "offset10-model"])
def test_time_contrastive_learning_recovers_a_latent(name):
    latent, neural = _latent_dataset()
    data = TensorDataset(neural)
    torch.manual_seed(0)
    model = cebra_pipe.models.init(name, num_neurons=40, num_units=32, num_output=8)
    data.configure_for(model)
    crit = criterions.FixedCosineInfoNCE(temperature=1.0)
    solver = cebra_pipe.solver.init("single-session", model=model, criterion=crit,
                                    optimizer=torch.optim.Adam(model.parameters(), lr=5e-3))
    before = _r2(solver.transform(data.neural).numpy(), latent)
    loader = ContinuousDataLoader(data, 200, 256, conditional="time", time_offset=10, seed=0)
    solver.fit(loader)
    after = _r2(solver.transform(data.neural).numpy(), latent)
    assert before < 0.7, before  # the untrained encoder does not give it away
    assert after >= 0.9, after
    assert np.mean(solver.history[-20:]) < solver.history[0] - 0.3


# -- devices -------------------------------------------------------------------------------
def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("cuda_if_available").type == expected
    with pytest.raises(ValueError, match="Unknown device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(TypeError, match="device must be a string"):
        resolve_device(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_unavailable_is_a_clear_error():
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device(device)


def test_solver_to_and_device():
    solver = _solver()
    assert solver.to("cpu") is solver
    assert solver.device == torch.device("cpu")
