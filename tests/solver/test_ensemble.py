"""Tests of the batched ensemble solver: every member equals its solo run (bit-identical
with the loop backend, to float tolerance with vmap), stacked optimizers equal separate
ones, checkpoints resume exactly (also across ensemble and solo), and bad ensembles
give clear errors."""

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
from cebra_pipe.solver import EnsembleSolver
from cebra_pipe.solver.ensemble import resolve_backend

NEURONS, TIME, BATCH = 6, 600, 64


# -- helpers -------------------------------------------------------------------------------
def _walk(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.05, (n, d)), 0).astype(np.float32)


NEURAL = np.random.default_rng(0).normal(size=(TIME, NEURONS)).astype(np.float32)
LABELS = _walk(TIME, 2, 1)


def _criterion(learnable: bool) -> torch.nn.Module:
    return (criterions.LearnableCosineInfoNCE(1.0, min_temperature=0.1) if learnable
            else criterions.FixedCosineInfoNCE(0.5))


def _member(seed: int, steps: int, *, model: str = "offset10-model", learnable: bool = True,
            optimizer=torch.optim.Adam, solver: str = "single-session", units: int = 16,
            hybrid: bool = False, batch: int | None = BATCH, **optimizer_kw):
    """A fresh (solver, loader) pair: weights from ``seed``, sampler seeded ``100 + seed``."""
    torch.manual_seed(seed)
    net = cebra_pipe.models.init(model, num_neurons=NEURONS, num_units=units, num_output=3)
    crit = _criterion(learnable)
    opt = optimizer(list(net.parameters()) + list(crit.parameters()),
                    **{"lr": 1e-3, **optimizer_kw})
    member = cebra_pipe.solver.init(solver, model=net, criterion=crit, optimizer=opt)
    data = TensorDataset(NEURAL, continuous=LABELS)
    data.configure_for(net)
    cls = HybridDataLoader if hybrid else ContinuousDataLoader
    loader = cls(data, steps, batch, conditional="time_delta", time_offset=5, seed=100 + seed)
    return member, loader


def _solo(seed: int, steps: int, **kw):
    member, loader = _member(seed, steps, **kw)
    torch.manual_seed(1000 + seed)  # dropout stream, as rng_seeds gives the ensemble
    member.fit(loader)
    return member


def _ensemble(seeds, steps: int, backend: str = "auto", **kw):
    pairs = [_member(seed, steps, **kw) for seed in seeds]
    EnsembleSolver([p[0] for p in pairs], backend=backend).fit(
        [p[1] for p in pairs], rng_seeds=[1000 + s for s in seeds])
    return [p[0] for p in pairs]


def _state(solver) -> dict[str, torch.Tensor]:
    state = {f"model.{k}": v for k, v in solver.model.state_dict().items()}
    state.update({f"crit.{k}": v for k, v in solver.criterion.state_dict().items()})
    for index, entry in solver.optimizer.state_dict()["state"].items():
        state.update({f"opt.{index}.{k}": v for k, v in entry.items()})
    return state


def _assert_identical(a, b) -> None:
    """Same weights, optimizer state, loss history and log, bit for bit."""
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert a.history == b.history
    assert a.log == b.log
    assert a.optimizer.state_dict()["param_groups"] == b.optimizer.state_dict()["param_groups"]


def _embedding(solver) -> torch.Tensor:
    return solver.transform(torch.from_numpy(NEURAL))


# -- every member equals its solo run ------------------------------------------------------
@pytest.mark.parametrize("learnable", [True, False])
def test_loop_members_are_bit_identical_to_solo_runs(learnable):
    seeds, steps = [0, 1, 2], 40
    members = _ensemble(seeds, steps, backend="loop", learnable=learnable)
    for seed, member in zip(seeds, members):
        _assert_identical(member, _solo(seed, steps, learnable=learnable))
        assert len(member.history) == steps


@pytest.mark.parametrize("learnable", [True, False])
def test_vmap_members_equal_solo_runs_to_float_tolerance(learnable):
    seeds, steps = [0, 1, 2], 100
    members = _ensemble(seeds, steps, backend="vmap", learnable=learnable)
    for seed, member in zip(seeds, members):
        solo = _solo(seed, steps, learnable=learnable)
        # Typically ~1e-6; Adam can turn a float-noise gradient into a few 1e-5.
        torch.testing.assert_close(_embedding(member), _embedding(solo), rtol=0, atol=5e-5)
        for key in solo.log:
            np.testing.assert_allclose(member.log[key], solo.log[key], rtol=0, atol=1e-5)
        for name, value in solo.model.state_dict().items():
            torch.testing.assert_close(member.model.state_dict()[name], value, rtol=0,
                                       atol=1e-4)


def test_vmap_backend_runs_full_batches_in_the_loop():
    """Full batches (batch_size=None) are embedded as a sliding convolution, not vmapped."""
    pairs = [_member(s, 4, batch=None) for s in (0, 1)]
    EnsembleSolver([p[0] for p in pairs], backend="vmap").fit([p[1] for p in pairs])
    for seed, (member, _) in zip((0, 1), pairs):
        _assert_identical(member, _solo(seed, 4, batch=None))


def test_hybrid_solver_ensemble_equals_solo():
    kw = {"solver": "single-session-hybrid", "hybrid": True}
    members = _ensemble([0, 1], 30, backend="loop", **kw)
    for seed, member in zip([0, 1], members):
        _assert_identical(member, _solo(seed, 30, **kw))
    for seed, member in zip([0, 1], _ensemble([0, 1], 30, backend="vmap", **kw)):
        torch.testing.assert_close(_embedding(member), _embedding(_solo(seed, 30, **kw)),
                                   rtol=0, atol=5e-5)


def test_dropout_members_keep_their_own_rng_stream():
    kw = {"model": "offset36-model-dropout", "units": 8}
    assert resolve_backend("auto", [_member(0, 1, **kw)[0]]) == "loop"
    members = _ensemble([0, 1], 8, **kw)
    for seed, member in zip([0, 1], members):
        _assert_identical(member, _solo(seed, 8, **kw))
    with pytest.raises(ValueError, match="dropout"):
        EnsembleSolver([_member(0, 1, **kw)[0]], backend="vmap")


def _multi_member(seed: int, steps: int):
    torch.manual_seed(seed)
    nets = torch.nn.ModuleList([cebra_pipe.models.init("offset5-model", num_neurons=n,
                                                       num_units=8, num_output=3)
                                for n in (4, 5)])
    crit = _criterion(True)
    opt = torch.optim.Adam(list(nets.parameters()) + list(crit.parameters()), lr=1e-3)
    member = cebra_pipe.solver.init("multi-session", model=nets, criterion=crit, optimizer=opt)
    rng = np.random.default_rng(7)
    sessions = DatasetCollection(*[TensorDataset(rng.normal(size=(300, n)).astype(np.float32),
                                                 continuous=_walk(300, 1, n)) for n in (4, 5)])
    sessions.configure_for(list(nets))
    loader = ContinuousMultiSessionDataLoader(sessions, steps, 32, time_offset=3, seed=seed)
    return member, loader


def test_multi_session_ensemble_equals_solo_and_uses_the_loop():
    pairs = [_multi_member(seed, 20) for seed in (0, 1)]
    ensemble = EnsembleSolver([p[0] for p in pairs])
    assert ensemble.backend == "loop"
    ensemble.fit([p[1] for p in pairs])
    for seed, (member, _) in zip((0, 1), pairs):
        solo, loader = _multi_member(seed, 20)
        solo.fit(loader)
        _assert_identical(member, solo)
    with pytest.raises(ValueError, match="permutation"):
        EnsembleSolver([p[0] for p in pairs], backend="vmap")


# -- stacked optimizers are K separate optimizers ------------------------------------------
@pytest.mark.parametrize("optimizer, kw", [
    (torch.optim.Adam, {}),
    (torch.optim.Adam, {"weight_decay": 1e-2, "amsgrad": True}),
    (torch.optim.AdamW, {"weight_decay": 1e-2}),
    (torch.optim.SGD, {"momentum": 0.9}),
])
def test_stacked_optimizer_equals_separate_optimizers(optimizer, kw):
    gen = torch.Generator().manual_seed(0)
    separate = [torch.randn(7, 5, generator=gen).requires_grad_() for _ in range(3)]
    stacked = torch.stack([p.detach() for p in separate]).requires_grad_()
    optimizers = [optimizer([p], lr=1e-2, **kw) for p in separate]
    together = optimizer([stacked], lr=1e-2, **kw)
    for _ in range(25):
        grads = torch.randn(3, 7, 5, generator=gen) * torch.logspace(-8, 0, 5)
        for p, g, opt in zip(separate, grads, optimizers):
            p.grad = g.clone()
            opt.step()
        stacked.grad = grads.clone()
        together.step()
    torch.testing.assert_close(stacked.detach(), torch.stack([p.detach() for p in separate]),
                               rtol=0, atol=0)


def test_members_with_other_optimizers_train_like_solo():
    kw = {"optimizer": torch.optim.AdamW, "weight_decay": 0.05}
    for seed, member in zip([0, 1], _ensemble([0, 1], 20, **kw)):
        _assert_identical(member, _solo(seed, 20, **kw))


# -- checkpoints -----------------------------------------------------------------------------
class _Stop(Exception):
    pass


def _stop_at(step: int):
    def callback(current, _):
        if current == step:
            raise _Stop

    return callback


def test_interrupted_ensemble_resumes_bit_identically(tmp_path):
    seeds, steps, every = [0, 1, 2], 30, 10
    dirs = [tmp_path / f"seed{s}" for s in seeds]
    pairs = [_member(s, steps) for s in seeds]
    with pytest.raises(_Stop):
        EnsembleSolver([p[0] for p in pairs]).fit(
            [p[1] for p in pairs], checkpoint_dirs=dirs, checkpoint_frequency=every,
            callback=_stop_at(20), callback_frequency=1)
    assert all(len(p[0].history) == 20 for p in pairs)  # interrupted members keep their steps
    assert all(sorted(p.name for p in d.glob("*.pt")) == ["checkpoint_00000020.pt"]
               for d in dirs)
    saved = torch.load(dirs[1] / "checkpoint_00000020.pt", weights_only=True)["model"]
    for name, tensor in saved.items():  # one member's weights, not the stacked storage
        assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
        assert torch.equal(tensor, pairs[1][0].model.state_dict()[name])
    pairs = [_member(s, steps) for s in seeds]  # a new process: fresh weights and loaders
    EnsembleSolver([p[0] for p in pairs]).fit([p[1] for p in pairs], checkpoint_dirs=dirs,
                                              checkpoint_frequency=every, resume=True)
    for seed, (member, _) in zip(seeds, pairs):
        _assert_identical(member, _solo(seed, steps))
        assert len(member.history) == steps


def test_ensemble_resumes_members_at_different_steps(tmp_path):
    """A job killed while writing one step's checkpoints: the members behind catch up."""
    steps, every = 30, 5
    dirs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for seed, stop in zip((0, 1, 2), (10, 20, 15)):  # solo checkpoints resume too
        member, loader = _member(seed, steps)
        with pytest.raises(_Stop):
            member.fit(loader, checkpoint_dir=dirs[seed], checkpoint_frequency=every,
                       callback=_stop_at(stop), callback_frequency=1)
    pairs = [_member(s, steps) for s in (0, 1, 2)]
    EnsembleSolver([p[0] for p in pairs]).fit([p[1] for p in pairs], checkpoint_dirs=dirs,
                                              checkpoint_frequency=every, resume=True)
    for seed, (member, _) in enumerate(pairs):
        _assert_identical(member, _solo(seed, steps))


def test_solo_run_resumes_an_ensemble_checkpoint(tmp_path):
    steps, every = 24, 8
    dirs = [tmp_path / "a", tmp_path / "b"]
    pairs = [_member(s, steps) for s in (0, 1)]
    with pytest.raises(_Stop):
        EnsembleSolver([p[0] for p in pairs]).fit(
            [p[1] for p in pairs], checkpoint_dirs=dirs, checkpoint_frequency=every,
            callback=_stop_at(16), callback_frequency=1)
    for seed in (0, 1):
        member, loader = _member(seed, steps)
        member.fit(loader, checkpoint_dir=dirs[seed], checkpoint_frequency=every, resume=True)
        _assert_identical(member, _solo(seed, steps))


def test_callback_sees_the_members_current_state():
    pairs = [_member(s, 12) for s in (0, 1)]
    seen = []

    def callback(step, ensemble):
        seen.append((step, [len(s.history) for s in ensemble.solvers],
                     [s.model.net[0].weight.detach().clone() for s in ensemble.solvers]))

    EnsembleSolver([p[0] for p in pairs]).fit([p[1] for p in pairs], callback=callback,
                                              callback_frequency=6)
    assert [(step, lengths) for step, lengths, _ in seen] == [(6, [6, 6]), (12, [12, 12])]
    final = [p[0].model.net[0].weight for p in pairs]
    assert all(torch.equal(a, b) for a, b in zip(seen[-1][2], final))


def test_members_own_their_tensors_after_training():
    members = _ensemble([0, 1], 3)
    for member in members:
        for param in list(member.model.parameters()) + list(member.criterion.parameters()):
            for tensor in (param, param.grad):
                assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()


def test_global_rng_is_left_alone():
    before = torch.get_rng_state()
    _ensemble([0, 1], 5)
    assert torch.equal(torch.get_rng_state(), before)


# -- errors ---------------------------------------------------------------------------------
def test_empty_ensemble_is_refused():
    with pytest.raises(ValueError, match="at least one solver"):
        EnsembleSolver([])


def test_mismatched_architectures_are_refused():
    with pytest.raises(ValueError, match="different architecture"):
        EnsembleSolver([_member(0, 1)[0], _member(1, 1, units=8)[0]])
    with pytest.raises(ValueError, match="different architecture"):
        EnsembleSolver([_member(0, 1)[0], _member(1, 1, model="offset5-model")[0]])
    with pytest.raises(ValueError, match="different architecture"):
        EnsembleSolver([_member(0, 1)[0], _member(1, 1, learnable=False)[0]])
    with pytest.raises(ValueError, match="different architecture"):  # normalize differs
        EnsembleSolver([_member(0, 1)[0], _member(1, 1, model="offset10-model-mse")[0]])
    with pytest.raises(ValueError, match="different architecture"):  # fixed temperatures
        first, other = _member(0, 1, learnable=False)[0], _member(1, 1, learnable=False)[0]
        other.criterion._temperature = 2.0
        EnsembleSolver([first, other])
    with pytest.raises(TypeError, match="one kind of solver"):
        EnsembleSolver([_member(0, 1)[0], _member(1, 1, solver="single-session-hybrid")[0]])


def test_mismatched_optimizers_are_refused():
    with pytest.raises(ValueError, match="optimizer settings"):
        EnsembleSolver([_member(0, 1)[0], _member(1, 1, lr=1e-2)[0]])
    with pytest.raises(TypeError, match="uses AdamW but"):
        EnsembleSolver([_member(0, 1)[0], _member(1, 1, optimizer=torch.optim.AdamW)[0]])
    with pytest.raises(TypeError, match="elementwise"):
        EnsembleSolver([_member(0, 1, optimizer=torch.optim.LBFGS)[0]])


def test_bad_loaders_and_folders_are_refused(tmp_path):
    pairs = [_member(s, 5) for s in (0, 1)]
    ensemble = EnsembleSolver([p[0] for p in pairs])
    with pytest.raises(ValueError, match="1 loaders for 2 solvers"):
        ensemble.fit([pairs[0][1]])
    with pytest.raises(ValueError, match="same loader"):
        ensemble.fit([pairs[0][1], pairs[0][1]])
    with pytest.raises(ValueError, match="different lengths"):
        ensemble.fit([pairs[0][1], _member(1, 6)[1]])
    with pytest.raises(ValueError, match="one folder per member"):
        ensemble.fit([p[1] for p in pairs], checkpoint_dirs=[tmp_path])
    with pytest.raises(ValueError, match="distinct folders"):
        ensemble.fit([p[1] for p in pairs], checkpoint_dirs=[tmp_path, tmp_path])
    with pytest.raises(ValueError, match="backend must be one of"):
        EnsembleSolver([pairs[0][0]], backend="threads")


def test_shared_model_is_refused():
    member, _ = _member(0, 1)
    twin = cebra_pipe.solver.init("single-session", model=member.model,
                                  criterion=member.criterion, optimizer=member.optimizer)
    with pytest.raises(ValueError, match="shares its model"):
        EnsembleSolver([member, twin])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_step_does_not_wait_for_the_host():
    pairs = [_member(s, 4) for s in (0, 1, 2)]
    for member, _ in pairs:
        member.to("cuda")
    ensemble = EnsembleSolver([p[0] for p in pairs])
    assert ensemble.backend == "vmap"
    from cebra_pipe.solver.ensemble import _MemberRNG, _Stack

    stack = _Stack(ensemble.solvers)
    rng = _MemberRNG(ensemble.device, [None] * 3)
    batches = [next(iter(p[1])).to("cuda") for p in pairs]
    ensemble.step(stack, batches, rng, [0, 1, 2])  # warm-up (lazy optimizer state)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        stats = ensemble.step(stack, batches, rng, [0, 1, 2])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert stats.shape == (3, 4) and stats.device.type == "cuda"
