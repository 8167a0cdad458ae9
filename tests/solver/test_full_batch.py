"""Full-batch training (``batch_size=None``): the chunked uniform term of the
criteria and the solver's single pass over the recording must give the values and
gradients of the dense, windowed computation, in memory linear in the batch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch.func import functional_call

import cebra_pipe.models
import cebra_pipe.solver
from cebra_pipe.data import Batch, TensorDataset
from cebra_pipe.data.datatypes import FullBatch
from cebra_pipe.data.single_session import ContinuousDataLoader
from cebra_pipe.models import criterions
from cebra_pipe.solver import single_session

SIMILARITIES = {"cosine": criterions.cosine_similarity,
                "euclidean": criterions.neg_squared_euclidean}
CRITERIA = {
    "FixedCosineInfoNCE": (criterions.FixedCosineInfoNCE, "cosine"),
    "FixedEuclideanInfoNCE": (criterions.FixedEuclideanInfoNCE, "euclidean"),
    "LearnableCosineInfoNCE": (criterions.LearnableCosineInfoNCE, "cosine"),
    "LearnableEuclideanInfoNCE": (criterions.LearnableEuclideanInfoNCE, "euclidean"),
}


# -- helpers -------------------------------------------------------------------------------
def _embeddings(kind: str, n: int = 9, m: int = 11, d: int = 4, seed: int = 0,
                scale: float = 1.0, dtype=torch.float64):
    """``ref, pos (n, d)``, ``neg (m, d)``; unit length for the cosine criteria."""
    gen = torch.Generator().manual_seed(seed)
    ref = torch.randn(n, d, generator=gen, dtype=dtype) * scale
    pos = ref + 0.3 * scale * torch.randn(n, d, generator=gen, dtype=dtype)
    neg = torch.randn(m, d, generator=gen, dtype=dtype) * scale
    if kind == "cosine":
        ref, pos, neg = (torch.nn.functional.normalize(x, dim=1) for x in (ref, pos, neg))
    return ref, pos, neg


def _chunk_bytes(monkeypatch, nbytes: int) -> None:
    """Every batch takes the chunked path, with chunks of ``nbytes`` (any thread count)."""
    monkeypatch.setattr(criterions, "CHUNKED_MIN_PAIRS", 0)
    monkeypatch.setattr(criterions, "CHUNKED_MIN_PAIRS_CPU", 0)
    monkeypatch.setattr(criterions, "CHUNK_BYTES", nbytes)
    monkeypatch.setattr(criterions, "CHUNK_BYTES_THREADED", nbytes)


@pytest.fixture
def chunked(monkeypatch):
    """Every batch takes the chunked path, with chunks of a few rows."""
    _chunk_bytes(monkeypatch, 100)  # 1 to 3 rows of float64


def _dense(monkeypatch) -> None:
    monkeypatch.setattr(criterions, "CHUNKED_MIN_PAIRS", 2**62)
    monkeypatch.setattr(criterions, "CHUNKED_MIN_PAIRS_CPU", 2**62)


def _loss_and_grads(crit, ref, pos, neg):
    """``(loss, align, uniform)`` and the gradients of the loss w.r.t. the inputs and
    the criterion's parameters."""
    inputs = [x.detach().clone().requires_grad_(True) for x in (ref, pos, neg)]
    values = crit(*inputs)
    grads = torch.autograd.grad(values[0], inputs + list(crit.parameters()))
    return [v.detach() for v in values], grads


# -- the chunked uniform term ---------------------------------------------------------------
@pytest.mark.parametrize("kind", list(SIMILARITIES))
@pytest.mark.parametrize("rows", [1, 3, 9, 50])
def test_uniform_term_matches_dense(kind, rows):
    sim = SIMILARITIES[kind]
    ref, _, neg = (x.requires_grad_(True) for x in _embeddings(kind, scale=2.0))
    for beta in (0.3, torch.tensor(2.5, dtype=torch.float64, requires_grad=True)):
        got = criterions.uniform_term(ref, neg, beta, sim, chunk_rows=rows)
        want = torch.logsumexp(sim(ref, neg) * beta, dim=1).mean()
        assert got.dim() == 0
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        inputs = [ref, neg] + ([beta] if isinstance(beta, torch.Tensor) else [])
        for g, w in zip(torch.autograd.grad(got, inputs), torch.autograd.grad(want, inputs)):
            torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", list(SIMILARITIES))
def test_uniform_term_gradcheck(kind):
    sim = SIMILARITIES[kind]
    ref, _, neg = (x.clone().requires_grad_(True) for x in _embeddings(kind, n=5, m=4, d=3))
    beta = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)

    def uniform(r, n, b):
        return criterions.uniform_term(r, n, b, sim, chunk_rows=2)

    assert torch.autograd.gradcheck(uniform, (ref, neg, beta))


def test_uniform_term_without_gradients():
    ref, _, neg = _embeddings("euclidean")
    with torch.no_grad():
        got = criterions.uniform_term(ref, neg, 0.5, criterions.neg_squared_euclidean,
                                      chunk_rows=4)
    want = torch.logsumexp(criterions.neg_squared_euclidean(ref, neg) * 0.5, dim=1).mean()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert got.grad_fn is None


def test_uniform_term_refuses_bad_arguments():
    ref, _, neg = _embeddings("cosine")
    with pytest.raises(ValueError, match="uniform_term supports"):
        criterions.uniform_term(ref, neg, 1.0, lambda a, b: a @ b.T)
    with pytest.raises(ValueError, match="chunk_rows"):
        criterions.uniform_term(ref, neg, 1.0, chunk_rows=0)


# -- the criteria: chunked == dense ----------------------------------------------------------
@pytest.mark.parametrize("name", list(CRITERIA))
@pytest.mark.parametrize("temperature", [0.05, 1.0, 3.7])
def test_chunked_criterion_matches_dense(name, temperature, monkeypatch):
    cls, kind = CRITERIA[name]
    crit = cls(temperature=temperature).double()
    ref, pos, neg = _embeddings(kind, seed=1, scale=1.5)
    _dense(monkeypatch)
    want_values, want_grads = _loss_and_grads(crit, ref, pos, neg)
    _chunk_bytes(monkeypatch, 2 * len(neg) * 8)  # 2 rows per chunk
    got_values, got_grads = _loss_and_grads(crit, ref, pos, neg)
    for got, want in zip(got_values, want_values):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert len(got_grads) == 3 + len(list(crit.parameters()))
    for got, want in zip(got_grads, want_grads):
        assert torch.count_nonzero(want) > 0
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(CRITERIA))
def test_chunked_criterion_gradcheck(name, chunked):
    cls, kind = CRITERIA[name]
    crit = cls(temperature=0.7).double()
    inputs = tuple(x.clone().requires_grad_(True)
                   for x in _embeddings(kind, n=5, m=4, d=3, seed=2))
    if not list(crit.parameters()):
        assert torch.autograd.gradcheck(lambda r, p, n: crit(r, p, n), inputs)
        return
    # the learnable log(1/T) enters as one more input
    log_inv = crit.log_inverse_temperature.detach().clone().requires_grad_(True)

    def loss(r, p, n, t):
        return functional_call(crit, {"log_inverse_temperature": t}, (r, p, n))

    assert torch.autograd.gradcheck(loss, inputs + (log_inv,))


@pytest.mark.parametrize("name", list(CRITERIA))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_small_temperature_is_finite(name, dtype, chunked, monkeypatch):
    cls, kind = CRITERIA[name]
    crit = cls(temperature=1e-3).to(dtype)
    ref, pos, neg = (x.to(dtype) for x in _embeddings(kind, scale=3.0))
    values, grads = _loss_and_grads(crit, ref, pos, neg)
    assert all(torch.isfinite(v) for v in values) and abs(values[0].item()) > 10
    assert all(torch.isfinite(g).all() for g in grads)
    _dense(monkeypatch)
    want, _ = _loss_and_grads(crit, ref, pos, neg)
    tol = {"rtol": 1e-5, "atol": 1e-2} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-6}
    torch.testing.assert_close(values[0], want[0], **tol)


def test_small_batches_keep_the_dense_path(monkeypatch):
    calls = []
    real = criterions.uniform_term
    monkeypatch.setattr(criterions, "uniform_term",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(criterions, "CHUNKED_MIN_PAIRS_CPU", 100)
    crit = criterions.LearnableCosineInfoNCE()
    crit(*_embeddings("cosine", n=9, m=11))  # 99 pairs
    assert calls == []
    crit(*_embeddings("cosine", n=10, m=10))  # 100 pairs
    assert calls == [1]


def test_the_cpu_chunks_from_smaller_batches_than_accelerators():
    cpu, accelerator = torch.device("cpu"), torch.device("meta")
    assert not criterions.takes_chunks(criterions.CHUNKED_MIN_PAIRS_CPU - 1, cpu)
    assert criterions.takes_chunks(criterions.CHUNKED_MIN_PAIRS_CPU, cpu)
    assert criterions.takes_chunks(512 * 512, cpu)
    assert not criterions.takes_chunks(512 * 512, accelerator)
    assert criterions.takes_chunks(criterions.CHUNKED_MIN_PAIRS, accelerator)


def test_chunks_are_cache_sized_on_one_thread_and_larger_on_several():
    like = torch.empty(0)  # float32 on the CPU
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = criterions._chunk_rows(like, 1000)
        torch.set_num_threads(2)
        several = criterions._chunk_rows(like, 1000)
    finally:
        torch.set_num_threads(threads)
    assert one == criterions.CHUNK_BYTES // 4000
    assert several == criterions.CHUNK_BYTES_THREADED // 4000
    assert criterions._chunk_rows(like, 10**9) == 1  # never below one row


# -- memory ---------------------------------------------------------------------------------
def test_chunked_backward_saves_only_linear_tensors(monkeypatch):
    """What the autograd graph keeps between forward and backward is O(n + m)."""
    n = m = 600
    monkeypatch.setattr(criterions, "CHUNKED_MIN_PAIRS", 0)
    monkeypatch.setattr(criterions, "CHUNKED_MIN_PAIRS_CPU", 0)
    saved: list[int] = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    crit = criterions.LearnableEuclideanInfoNCE()
    ref, pos, neg = (x.requires_grad_(True)
                     for x in _embeddings("euclidean", n=n, m=m, d=3, dtype=torch.float32))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = crit(ref, pos, neg)[0]
    assert max(saved) <= 4 * max(n, m)  # e.g. (m, d + 1) for the euclidean factors
    loss.backward()
    assert torch.isfinite(ref.grad).all()


_PEAK_WORKER = textwrap.dedent("""
    import json, resource, sys
    import torch
    from cebra_pipe.models import criterions
    torch.set_num_threads(1)
    n, name = int(sys.argv[1]), sys.argv[2]
    crit = getattr(criterions, name)()

    def step(size):
        gen = torch.Generator().manual_seed(0)
        ref, pos, neg = (torch.nn.functional.normalize(torch.randn(size, 3, generator=gen), dim=1)
                         .requires_grad_(True) for _ in range(3))
        loss = crit(ref, pos, neg)[0]
        loss.backward()
        return float(loss.detach())

    step(1100)  # load the chunked kernels and the thread pool before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loss = step(n)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"delta_kb": after - before, "loss": loss}))
""")


def test_peak_memory_is_far_below_n_squared():
    """Forward and backward at n = m = 20,000 in a fresh process: a dense (n, m)
    float32 matrix alone is 1.6 GB, the chunked criterion needs a small fraction."""
    n = 20_000
    out = subprocess.run([sys.executable, "-c", _PEAK_WORKER, str(n),
                          "LearnableEuclideanInfoNCE"], check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    dense_bytes = n * n * 4
    peak_bytes = result["delta_kb"] * 1024  # ru_maxrss is in KiB on Linux
    assert np.isfinite(result["loss"])
    assert peak_bytes < dense_bytes / 8, (peak_bytes, dense_bytes)


# -- the solver: one pass over the recording == windows --------------------------------------
def _neural(n: int = 400, neurons: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, neurons)).astype(np.float32)


def _walk(n: int = 400, dims: int = 1, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.05, (n, dims)), 0).astype(np.float32)


def _setup(model_name: str = "offset10-model", labels: bool = False, criterion=None,
           steps: int = 1):
    torch.manual_seed(0)
    model = cebra_pipe.models.init(model_name, num_neurons=5, num_units=16, num_output=3)
    crit = criterion if criterion is not None else criterions.LearnableCosineInfoNCE(0.5)
    opt = torch.optim.Adam(list(model.parameters()) + list(crit.parameters()), lr=1e-3)
    solver = cebra_pipe.solver.init("single-session", model=model, criterion=crit,
                                    optimizer=opt)
    data = TensorDataset(_neural(), continuous=_walk() if labels else None)
    data.configure_for(model)
    loader = ContinuousDataLoader(data, steps, None, conditional="time_delta", time_offset=4,
                                  seed=0)
    return solver, loader


def _windowed(batch: FullBatch) -> Batch:
    """The same batch as plain windows: the solver's per-window path."""
    return Batch(reference=batch.reference, positive=batch.positive, negative=batch.negative)


def _solver_loss_and_grads(solver, batch):
    params = list(solver.model.parameters()) + list(solver.criterion.parameters())
    values = solver.compute_loss(batch)
    return [v.detach() for v in values], torch.autograd.grad(values[0], params)


def test_full_batch_loader_yields_lazy_windows():
    _, loader = _setup(labels=True)
    index = loader.get_indices(None)
    assert index.full_batch
    batch = loader.load(index)
    assert isinstance(batch, FullBatch)
    data = loader.dataset
    assert torch.equal(batch.reference, data[index.reference])
    assert torch.equal(batch.positive, data[index.positive])
    assert torch.equal(batch.negative, data[index.negative])
    assert batch.positive_time is None
    assert torch.equal(batch.stacked("reference", "negative"),
                       torch.cat([batch.reference, batch.negative]))
    moved = batch.to("cpu")
    assert isinstance(moved, FullBatch) and moved.index.full_batch
    assert torch.equal(moved.index.negative, index.negative)
    # a sized batch is still a plain Batch of windows
    sized = loader.get_indices(32)
    assert not sized.full_batch and isinstance(loader.load(sized), Batch)


@pytest.mark.parametrize("labels", [False, True], ids=["time", "continuous"])
@pytest.mark.parametrize("model_name", ["offset10-model", "offset1-model", "offset5-model"])
def test_sliding_full_batch_matches_windows(labels, model_name):
    solver, loader = _setup(model_name, labels=labels)
    batch = next(iter(loader))
    assert isinstance(batch, FullBatch) and solver._can_slide(batch)
    got_values, got_grads = _solver_loss_and_grads(solver, batch)
    want_values, want_grads = _solver_loss_and_grads(solver, _windowed(batch))
    for got, want in zip(got_values, want_values):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(got_grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_sliding_full_batch_rows_are_the_window_embeddings():
    solver, loader = _setup(labels=True)
    batch = next(iter(loader))
    with torch.no_grad():
        sliding = solver.embed_full_batch(solver.model, batch)
        windows = [solver.embed(solver.model, w)
                   for w in (batch.reference, batch.positive, batch.negative)]
    for got, want in zip(sliding, windows):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["FixedEuclideanInfoNCE", "LearnableCosineInfoNCE"])
def test_sliding_and_chunked_match_windows_and_dense(name, monkeypatch):
    crit = CRITERIA[name][0](temperature=0.5)
    solver, loader = _setup("offset10-model-mse" if "Euclidean" in name else "offset10-model",
                            labels=True, criterion=crit)
    batch = next(iter(loader))
    _dense(monkeypatch)
    want_values, want_grads = _solver_loss_and_grads(solver, _windowed(batch))
    _chunk_bytes(monkeypatch, 1000)
    got_values, got_grads = _solver_loss_and_grads(solver, batch)
    for got, want in zip(got_values, want_values):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for got, want in zip(got_grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_dropout_and_subsampling_models_use_windows(monkeypatch):
    def refuse(*_):
        raise AssertionError("the sliding path was used")

    monkeypatch.setattr(single_session.SingleSessionSolver, "embed_full_batch", refuse)
    for model_name in ("offset36-model-dropout", "offset20-model-4x-subsample"):
        solver, loader = _setup(model_name)
        batch = next(iter(loader))
        assert not single_session.slides_over_recording(solver.model) or model_name.endswith(
            "dropout")
        torch.manual_seed(1)
        got = solver.compute_loss(batch)[0]
        torch.manual_seed(1)
        want = solver.compute_loss(_windowed(batch))[0]
        torch.testing.assert_close(got, want)
    # in evaluation mode dropout is off, so the recording can be embedded at once
    solver, _ = _setup("offset36-model-dropout")
    assert not single_session.slides_over_recording(solver.model)
    solver.model.eval()
    assert single_session.slides_over_recording(solver.model)


def test_full_batch_training_steps_and_is_reproducible():
    def train():
        solver, loader = _setup(labels=True, steps=4)
        solver.fit(loader)
        return solver

    a, b = train(), train()
    assert len(a.history) == 4 and all(np.isfinite(a.history))
    assert a.history == b.history
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
