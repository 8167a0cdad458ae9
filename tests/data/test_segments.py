"""Segments (trials, session parts): no window and no positive crosses a seam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cebra_pipe.data import DatasetCollection, Offset, TensorDataset, samplers
from cebra_pipe.data.datatypes import IndexSet
from cebra_pipe.data.multi_session import (ContinuousMultiSessionDataLoader,
                                           DiscreteMultiSessionDataLoader)
from cebra_pipe.data.single_session import (ContinuousDataLoader, DiscreteDataLoader,
                                            HybridDataLoader, MixedDataLoader)

OFFSET = Offset(5, 5)
TIME_OFFSET = 7
# Runs of segment ids: one shorter than the receptive field (4), one too short for a
# reference with its partner (12 < 10 + 7 - 1 + 1), an id that comes back later.
RUNS = [(3, 120), (1, 4), (0, 90), (5, 12), (3, 150), (2, 224)]
BATCHES, BATCH = 40, 256


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _segments(runs=RUNS) -> torch.Tensor:
    return torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in runs])


def _run_of(segments: torch.Tensor) -> torch.Tensor:
    """Run number of every sample (a new run wherever the id changes)."""
    return torch.cat([torch.zeros(1, dtype=torch.long),
                      torch.cumsum((segments[1:] != segments[:-1]).long(), 0)])


def _dataset(seed: int = 0, runs=RUNS, neurons: int = 3) -> TensorDataset:
    segments = _segments(runs)
    n = len(segments)
    gen = _gen(seed)
    position = torch.cumsum(torch.randn(n, 2, generator=gen) * 0.05, 0)
    klass = torch.randint(0, 3, (n,), generator=gen)
    return TensorDataset(torch.randn(n, neurons, generator=gen), continuous=position,
                         discrete=klass, offset=OFFSET, segments=segments)


def _admissible(ds: TensorDataset, time_offset: int = 0) -> torch.Tensor:
    """By brute force: times whose window and partner's window lie in one run."""
    run = _run_of(ds.segments)
    n = len(ds)
    keep = []
    for t in range(n):
        first, last = t - OFFSET.left, t + time_offset + OFFSET.right - 1
        if first >= 0 and last < n and run[first] == run[last]:
            keep.append(t)
    return torch.tensor(keep)


def _assert_inside_one_segment(ds: TensorDataset, index: torch.Tensor,
                               partner: int = 0) -> None:
    """The window of every index (and of index + partner) lies inside one run."""
    run = _run_of(ds.segments)
    first = index - OFFSET.left
    last = index + partner + OFFSET.right - 1
    assert int(first.min()) >= 0 and int(last.max()) < len(ds)
    assert torch.equal(run[first], run[last]), "a window crosses a seam"


def test_admissible_sets_match_brute_force():
    ds = _dataset()
    for time_offset in (0, 1, TIME_OFFSET):
        assert torch.equal(ds.admissible(time_offset).all(), _admissible(ds, time_offset))
    assert ds.segment_bounds().tolist() == [[0, 120], [120, 124], [124, 214], [214, 226],
                                            [226, 376], [376, 600]]


def test_index_set_maps_and_selects():
    index = IndexSet(torch.tensor([[2, 5], [7, 7], [9, 11]]))
    assert len(index) == 5
    assert index.all().tolist() == [2, 3, 4, 9, 10]
    assert index.map(torch.tensor([0, 3, 4])).tolist() == [2, 9, 10]
    values = torch.arange(20) * 10
    assert index.select(values).tolist() == [20, 30, 40, 90, 100]
    single = IndexSet(torch.tensor([[3, 8]]))
    assert single.map(torch.tensor([0, 4])).tolist() == [3, 7]
    assert single.select(values).tolist() == [30, 40, 50, 60, 70]


def _record_priors(sampler: samplers.Sampler) -> list:
    """Wrap ``sampler.sample_prior`` so every draw (incl. those for label changes) is kept."""
    draws = []
    original = sampler.sample_prior

    def sample_prior(num_samples):
        draw = original(num_samples)
        draws.append(draw)
        return draw

    sampler.sample_prior = sample_prior
    return draws


@pytest.mark.parametrize("kind, kwargs", [
    ("time", {}), ("time_delta", {}), ("delta_normal", {"delta": 0.1}),
    ("discrete", {"prior": "empirical"}), ("discrete", {"prior": "uniform"}), ("mixed", {})])
def test_no_window_or_positive_crosses_a_seam(kind, kwargs):
    ds = _dataset()
    sampler = samplers.init(kind, ds, _gen(1), time_offset=TIME_OFFSET, **kwargs)
    partner = 0 if kind == "discrete" else TIME_OFFSET
    draws = _record_priors(sampler)
    seen = []
    for _ in range(BATCHES):
        reference = sampler.sample_prior(BATCH)
        negative = sampler.sample_prior(BATCH)
        positive = sampler.sample_conditional(reference)
        _assert_inside_one_segment(ds, reference, partner)
        _assert_inside_one_segment(ds, negative, partner)
        _assert_inside_one_segment(ds, positive)
        seen.append(reference)
        if kind == "time":
            assert torch.equal(positive, reference + TIME_OFFSET)
        if kind in ("discrete", "mixed"):
            assert torch.equal(ds.discrete[positive], ds.discrete[reference])
    # label changes of time_delta / mixed are observed within one segment too
    for draw in draws:
        _assert_inside_one_segment(ds, draw, partner)
    # nothing admissible is left out: the prior covers the whole admissible set
    if kind != "discrete" or kwargs["prior"] == "empirical":
        covered = torch.unique(torch.cat(seen))
        assert torch.equal(covered, _admissible(ds, partner))


@pytest.mark.parametrize("kind", ["time_delta", "delta_normal", "mixed"])
def test_behaviour_positive_is_nearest_admissible_label(kind):
    ds = _dataset(seed=3)
    kwargs = {"delta": 0.1} if kind == "delta_normal" else {}
    sampler = samplers.init(kind, ds, _gen(4), time_offset=TIME_OFFSET, **kwargs)
    reference = sampler.sample_prior(BATCH)
    target = sampler.target(reference)
    positive = sampler.nearest(target)
    allowed = _admissible(ds)
    labels = ds.continuous if kind != "mixed" else torch.cat(
        [ds.continuous, sampler.class_coordinate[:, None]], 1)
    best = torch.cdist(target.double(), labels[allowed].double()).min(1).values
    got = (labels[positive].double() - target.double()).norm(dim=1)
    assert torch.all(got <= best + 1e-5)
    assert torch.isin(positive, allowed).all()


def _check_batches(ds, loader, partner, hybrid=False):
    for _ in range(BATCHES // 4):
        index = loader.get_indices(loader.batch_size)
        _assert_inside_one_segment(ds, index.reference, partner)
        _assert_inside_one_segment(ds, index.negative, partner)
        _assert_inside_one_segment(ds, index.positive)
        if hybrid:
            assert torch.equal(index.positive_time, index.reference + TIME_OFFSET)


def test_loaders_respect_seams():
    ds = _dataset(seed=5)
    for loader, partner in [
            (ContinuousDataLoader(ds, 10, BATCH, conditional="time_delta",
                                  time_offset=TIME_OFFSET, seed=0), TIME_OFFSET),
            (DiscreteDataLoader(ds, 10, BATCH, seed=0), 0),
            (MixedDataLoader(ds, 10, BATCH, time_offset=TIME_OFFSET, seed=0), TIME_OFFSET)]:
        _check_batches(ds, loader, partner)
    hybrid = HybridDataLoader(ds, 10, BATCH, conditional="time_delta",
                              time_offset=TIME_OFFSET, seed=0)
    _check_batches(ds, hybrid, TIME_OFFSET, hybrid=True)


@pytest.mark.parametrize("conditional", ["time", "time_delta"])
def test_full_batch_uses_only_admissible_references(conditional):
    ds = _dataset(seed=6)
    loader = ContinuousDataLoader(ds, 1, None, conditional=conditional,
                                  time_offset=TIME_OFFSET, seed=0)
    index = loader.get_indices(None)
    assert torch.equal(index.reference, _admissible(ds, TIME_OFFSET))
    _assert_inside_one_segment(ds, index.negative, TIME_OFFSET)
    _assert_inside_one_segment(ds, index.positive)


@pytest.mark.parametrize("conditional", ["time", "time_delta", "delta_normal", "discrete"])
def test_multi_session_respects_seams(conditional):
    other_runs = [(0, 200), (1, 8), (2, 150), (0, 140)]
    sessions = [_dataset(seed=7), _dataset(seed=8, runs=other_runs, neurons=4)]
    collection = DatasetCollection(*sessions)
    if conditional == "discrete":
        loader = DiscreteMultiSessionDataLoader(collection, 10, BATCH, time_offset=TIME_OFFSET,
                                                seed=0)
    else:
        loader = ContinuousMultiSessionDataLoader(collection, 10, BATCH,
                                                  conditional=conditional,
                                                  time_offset=TIME_OFFSET, delta=0.1, seed=0)
    partner = 0 if conditional == "discrete" else TIME_OFFSET
    for _ in range(BATCHES // 4):
        reference, positive, negative, _sigma = loader.get_indices(BATCH)
        for ds, ref, pos, neg in zip(sessions, reference, positive, negative):
            _assert_inside_one_segment(ds, ref, partner)
            _assert_inside_one_segment(ds, neg, partner)
            _assert_inside_one_segment(ds, pos)


@pytest.mark.parametrize("kind, kwargs", [
    ("time", {}), ("time_delta", {}), ("delta_normal", {"delta": 0.1}),
    ("discrete", {"prior": "uniform"}), ("mixed", {})])
def test_one_segment_draws_exactly_as_without_segments(kind, kwargs):
    """Segment ids that never change give the very same batches as no segments."""
    source = _dataset(seed=9)
    plain = TensorDataset(source.neural, source.continuous, source.discrete, offset=OFFSET)
    same = TensorDataset(source.neural, source.continuous, source.discrete, offset=OFFSET,
                         segments=np.full(len(source), 4))
    draws = []
    for ds in (plain, same):
        sampler = samplers.init(kind, ds, _gen(2), time_offset=TIME_OFFSET, **kwargs)
        reference = sampler.sample_prior(BATCH)
        draws.append((reference, sampler.sample_conditional(reference),
                      sampler.sample_prior(BATCH)))
    for a, b in zip(*draws):
        assert torch.equal(a, b)


def test_bad_segments():
    neural = torch.randn(50, 3)
    with pytest.raises(TypeError, match="segments must hold integer"):
        TensorDataset(neural, segments=np.linspace(0, 1, 50))
    with pytest.raises(ValueError, match="segments has 49 samples but neural has 50"):
        TensorDataset(neural, segments=np.zeros(49, int))
    with pytest.raises(ValueError, match=r"segments must be 1-D"):
        TensorDataset(neural, segments=np.zeros((50, 2), int))
    short = TensorDataset(neural, offset=OFFSET, segments=np.arange(50) // 9)
    with pytest.raises(ValueError, match="No segment is long enough.*longest has 9"):
        samplers.init("time", short, _gen())
    tight = TensorDataset(neural, offset=OFFSET, segments=np.arange(50) // 12)
    samplers.init("time", tight, _gen(), time_offset=2)
    with pytest.raises(ValueError, match="time_offsets=3 .* same segment"):
        samplers.init("time", tight, _gen(), time_offset=3)
