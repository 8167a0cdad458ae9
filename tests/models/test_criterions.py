"""Tests of the InfoNCE criteria against a naive float64 loop implementation."""

from __future__ import annotations

import math

import pytest
import torch

from cebra_pipe import models
from cebra_pipe.models import criterions

CRITERIA = {
    "FixedCosineInfoNCE": (criterions.FixedCosineInfoNCE, "cosine"),
    "FixedEuclideanInfoNCE": (criterions.FixedEuclideanInfoNCE, "euclidean"),
    "LearnableCosineInfoNCE": (criterions.LearnableCosineInfoNCE, "cosine"),
    "LearnableEuclideanInfoNCE": (criterions.LearnableEuclideanInfoNCE, "euclidean"),
}


def _oracle(ref, pos, neg, temperature, kind):
    """loss = mean_i [-sim(r_i, p_i)/T + log sum_j exp(sim(r_i, n_j)/T)], as plain loops.

    Differentiable (built from scalar torch ops), float64.
    """
    def sim(a, b):
        if kind == "cosine":
            return (a * b).sum()
        return -((a - b) ** 2).sum()

    n, m = len(ref), len(neg)
    align_terms, uniform_terms = [], []
    for i in range(n):
        align_terms.append(-sim(ref[i], pos[i]) / temperature)
        logits = [sim(ref[i], neg[j]) / temperature for j in range(m)]
        top = max(float(v.detach()) for v in logits)  # shift for stability, gradient unchanged
        total = sum(torch.exp(v - top) for v in logits)
        uniform_terms.append(top + torch.log(total))
    align = sum(align_terms) / n
    uniform = sum(uniform_terms) / n
    return align + uniform, align, uniform


def _inputs(kind, n=7, m=9, d=4, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    ref = torch.randn(n, d, generator=gen, dtype=torch.float64) * scale
    pos = ref + 0.3 * torch.randn(n, d, generator=gen, dtype=torch.float64) * scale
    neg = torch.randn(m, d, generator=gen, dtype=torch.float64) * scale
    if kind == "cosine":
        ref, pos, neg = (torch.nn.functional.normalize(x, dim=1) for x in (ref, pos, neg))
    return ref, pos, neg


def _make(cls, temperature):
    return cls(temperature=temperature).double()


def _effective_temperature(crit) -> float:
    """The temperature the criterion really uses (a learnable one is stored as float32
    ``log(1/T)`` before ``.double()``, so it differs from the nominal value by ~1e-8)."""
    inverse = crit.inverse_temperature()
    if isinstance(inverse, torch.Tensor):
        inverse = inverse.detach()
    return float(1.0 / inverse)


def test_aliases_and_registry():
    assert models.InfoNCE is criterions.FixedCosineInfoNCE
    assert models.InfoMSE is criterions.FixedEuclideanInfoNCE
    assert models.criterions.InfoNCE is criterions.FixedCosineInfoNCE
    assert isinstance(criterions.init("infonce-euclidean-learnable"),
                      criterions.LearnableEuclideanInfoNCE)
    assert set(criterions.get_options()) >= {"infonce-cosine", "infonce-euclidean",
                                             "infonce-cosine-learnable",
                                             "infonce-euclidean-learnable"}


@pytest.mark.parametrize("name", list(CRITERIA))
@pytest.mark.parametrize("temperature", [0.1, 1.0, 3.7])
def test_matches_naive_loop(name, temperature):
    cls, kind = CRITERIA[name]
    crit = _make(cls, temperature)
    ref, pos, neg = _inputs(kind)
    loss, align, uniform = crit(ref, pos, neg)
    assert _effective_temperature(crit) == pytest.approx(temperature, rel=1e-6)
    want_loss, want_align, want_uniform = _oracle(ref, pos, neg,
                                                  _effective_temperature(crit), kind)
    for got in (loss, align, uniform):
        assert got.dim() == 0
    torch.testing.assert_close(loss, want_loss, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(align, want_align, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(uniform, want_uniform, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(loss, align + uniform, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CRITERIA))
def test_gradients_match_oracle(name):
    cls, kind = CRITERIA[name]
    crit = _make(cls, 0.5)
    ref, pos, neg = (x.clone().requires_grad_(True) for x in _inputs(kind, seed=1))
    loss = crit(ref, pos, neg)[0]
    got = torch.autograd.grad(loss, (ref, pos, neg))
    want = torch.autograd.grad(_oracle(ref, pos, neg, _effective_temperature(crit), kind)[0],
                               (ref, pos, neg))
    for g, w in zip(got, want):
        assert torch.count_nonzero(w) > 0
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", list(CRITERIA))
def test_gradcheck(name):
    cls, kind = CRITERIA[name]
    crit = _make(cls, 0.7)
    inputs = tuple(x.clone().requires_grad_(True) for x in _inputs(kind, n=4, m=5, d=3, seed=2))
    assert torch.autograd.gradcheck(lambda r, p, n: crit(r, p, n), inputs)


@pytest.mark.parametrize("name", ["LearnableCosineInfoNCE", "LearnableEuclideanInfoNCE"])
def test_temperature_gradient_matches_oracle(name):
    cls, kind = CRITERIA[name]
    crit = _make(cls, 0.8)
    ref, pos, neg = _inputs(kind, seed=3)
    loss = crit(ref, pos, neg)[0]
    (grad,) = torch.autograd.grad(loss, crit.log_inverse_temperature)
    log_inv = crit.log_inverse_temperature.detach().clone().requires_grad_(True)
    want = _oracle(ref, pos, neg, 1.0 / log_inv.exp(), kind)[0]
    (want_grad,) = torch.autograd.grad(want, log_inv)
    torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-12)
    assert abs(float(grad)) > 0


@pytest.mark.parametrize("name", list(CRITERIA))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_temperature_is_finite(name, dtype):
    cls, kind = CRITERIA[name]
    crit = cls(temperature=1e-3).to(dtype)
    ref, pos, neg = (x.to(dtype).requires_grad_(True) for x in _inputs(kind, scale=3.0))
    loss, align, uniform = crit(ref, pos, neg)
    assert torch.isfinite(loss) and torch.isfinite(align) and torch.isfinite(uniform)
    assert abs(loss.item()) > 10  # the logits really are large
    loss.backward()
    for x in (ref, pos, neg):
        assert torch.isfinite(x.grad).all()
    if dtype == torch.float64:
        want = _oracle(ref.detach(), pos.detach(), neg.detach(),
                       _effective_temperature(crit), kind)[0]
        torch.testing.assert_close(loss.detach(), want, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("name", ["LearnableCosineInfoNCE", "LearnableEuclideanInfoNCE"])
def test_learnable_temperature_clamped_at_minimum(name):
    cls, kind = CRITERIA[name]
    crit = cls(temperature=1.0, min_temperature=0.1).double()
    assert crit.temperature == pytest.approx(1.0)
    with torch.no_grad():
        crit.log_inverse_temperature.fill_(math.log(1000.0))  # T = 1e-3 < min
    assert crit.temperature == pytest.approx(0.1)
    ref, pos, neg = _inputs(kind, seed=4)
    loss = crit(ref, pos, neg)[0]
    torch.testing.assert_close(loss, _oracle(ref, pos, neg, 0.1, kind)[0],
                               rtol=1e-10, atol=1e-10)
    # beyond the clamp the temperature parameter receives no gradient
    loss.backward()
    assert float(crit.log_inverse_temperature.grad) == 0.0
    # above the minimum the temperature is used as is
    with torch.no_grad():
        crit.log_inverse_temperature.fill_(math.log(2.0))
    assert crit.temperature == pytest.approx(0.5)
    # without a minimum nothing is clamped
    free = cls(temperature=1.0).double()
    with torch.no_grad():
        free.log_inverse_temperature.fill_(math.log(1000.0))
    assert free.temperature == pytest.approx(1e-3)


def test_learnable_temperature_is_a_parameter():
    crit = criterions.LearnableCosineInfoNCE(temperature=2.0)
    params = list(crit.parameters())
    assert len(params) == 1
    assert params[0].item() == pytest.approx(-math.log(2.0))
    assert list(criterions.FixedCosineInfoNCE(temperature=2.0).parameters()) == []
    assert criterions.FixedCosineInfoNCE(temperature=2.0).temperature == 2.0


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        criterions.FixedCosineInfoNCE(temperature=bad)
    with pytest.raises(ValueError, match="min_temperature"):
        criterions.LearnableCosineInfoNCE(temperature=1.0, min_temperature=bad)


@pytest.mark.parametrize("num_negatives", [64, 512])
def test_chance_level_is_log_num_negatives(num_negatives):
    # A model at chance: the reference carries no information, every embedding is
    # the same point, so all similarities are equal and the loss is log(m).
    for name, (cls, kind) in CRITERIA.items():
        crit = _make(cls, 1.0)
        point = torch.nn.functional.normalize(torch.ones(1, 3, dtype=torch.float64), dim=1)
        ref = point.expand(32, 3)
        loss = crit(ref, ref, point.expand(num_negatives, 3))[0]
        assert loss.item() == pytest.approx(math.log(num_negatives), rel=1e-9), name


def test_random_independent_embeddings_are_near_chance():
    # Independent random unit vectors in high dimension: cosine similarities ~ 0.
    gen = torch.Generator().manual_seed(5)
    n = m = 2048
    unit = lambda k: torch.nn.functional.normalize(
        torch.randn(k, 256, generator=gen, dtype=torch.float64), dim=1)
    loss = criterions.FixedCosineInfoNCE(temperature=1.0)(unit(n), unit(n), unit(m))[0]
    assert loss.item() == pytest.approx(math.log(m), abs=0.05)


def test_functional_infonce_of_dot_similarity_matches_the_module():
    gen = torch.Generator().manual_seed(1)
    ref, pos, neg = (torch.nn.functional.normalize(torch.randn(k, 4, generator=gen), dim=1)
                     for k in (16, 16, 24))
    pos_sim, neg_sim = criterions.dot_similarity(ref, pos, neg)
    assert pos_sim.shape == (16,) and neg_sim.shape == (16, 24)
    torch.testing.assert_close(pos_sim, (ref * pos).sum(1))
    expected = criterions.FixedCosineInfoNCE(temperature=1.0)(ref, pos, neg)
    for got, want in zip(criterions.infonce(pos_sim, neg_sim), expected):
        torch.testing.assert_close(got, want)
    pos_d, neg_d = criterions.euclidean_similarity(ref, pos, neg)
    torch.testing.assert_close(neg_d, -torch.cdist(ref, neg) ** 2, atol=1e-5, rtol=0)
    torch.testing.assert_close(pos_d, -((ref - pos) ** 2).sum(1))
