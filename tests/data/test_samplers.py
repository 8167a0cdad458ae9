"""Invariants of the samplers in ``cebra_pipe.data.samplers``."""

from __future__ import annotations

import math

import pytest
import torch

from cebra_pipe.data import DatasetCollection, Offset, TensorDataset, samplers
from cebra_pipe.data.samplers import (
    DeltaNormalSampler,
    DiscreteSampler,
    MixedSampler,
    MultiSessionSampler,
    TimeDeltaSampler,
    TimeSampler,
)

OFFSET = Offset(5, 5)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _walk(n: int, d: int, seed: int, step: float = 0.05) -> torch.Tensor:
    return torch.cumsum(torch.randn(n, d, generator=_gen(seed)) * step, 0)


def _dataset(n: int = 400, neurons: int = 3, continuous=None, discrete=None,
             offset: Offset = OFFSET, seed: int = 0) -> TensorDataset:
    neural = torch.randn(n, neurons, generator=_gen(seed))
    return TensorDataset(neural, continuous=continuous, discrete=discrete, offset=offset)


def _assert_windows_inside(dataset: TensorDataset, index: torch.Tensor) -> None:
    assert index.dtype == torch.long
    assert int(index.min()) - dataset.offset.left >= 0
    assert int(index.max()) + dataset.offset.right <= len(dataset)
    windows = dataset[index]
    assert windows.shape == (len(index), dataset.input_dimension, len(dataset.offset))


def _nearest_squared_distance(points: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    points, targets = points.double(), targets.double()
    return torch.cdist(targets, points,
                       compute_mode="donot_use_mm_for_euclid_dist").min(1).values ** 2


def _assert_nearest(labels: torch.Tensor, chosen: torch.Tensor, targets: torch.Tensor,
                    atol: float = 1e-5) -> None:
    """``labels[chosen]`` is (one of) the nearest labels to ``targets`` (float32 slack)."""
    got = ((labels[chosen].double() - targets.double()) ** 2).sum(1)
    best = _nearest_squared_distance(labels, targets)
    assert torch.all(got <= best + atol), (got - best).max()


class _Recorder:
    """Mixin recording the targets and the prior draws used by a behaviour sampler."""

    def target(self, reference):
        self.priors = []
        target = super().target(reference)
        self.last_target = target
        return target

    def sample_prior(self, num_samples):
        draw = super().sample_prior(num_samples)
        if hasattr(self, "priors"):
            self.priors.append(draw)
        return draw


class RecordingTimeDelta(_Recorder, TimeDeltaSampler):
    pass


class RecordingDeltaNormal(_Recorder, DeltaNormalSampler):
    pass


class RecordingMixed(_Recorder, MixedSampler):
    pass


def test_registry():
    assert set(samplers.get_options()) >= {"time", "time_delta", "delta_normal", "discrete",
                                          "mixed"}
    ds = _dataset()
    assert isinstance(samplers.init("time", ds, _gen()), TimeSampler)


# -- time ----------------------------------------------------------------------------------
@pytest.mark.parametrize("time_offset", [0, 1, 10, 380])
@pytest.mark.parametrize("offset", [Offset(0, 1), Offset(5, 5), Offset(2, 8)])
def test_time_sampler(time_offset, offset):
    ds = _dataset(n=400, offset=offset)
    sampler = TimeSampler(ds, _gen(1), time_offset=time_offset)
    ref = sampler.sample_prior(4000)
    pos = sampler.sample_conditional(ref)
    assert torch.equal(pos, ref + time_offset)
    _assert_windows_inside(ds, ref)
    _assert_windows_inside(ds, pos)
    # the prior reaches both ends of the admissible range
    assert int(ref.min()) == offset.left
    assert int(ref.max()) == len(ds) - offset.right - time_offset
    assert torch.equal(sampler.all_references(),
                       torch.arange(offset.left, len(ds) - offset.right - time_offset + 1))


def test_time_offset_beyond_recording():
    ds = _dataset(n=50)
    TimeSampler(ds, _gen(), time_offset=40)  # 50 - 10 + 1 = 41 admissible: 40 is the last
    with pytest.raises(ValueError, match="time_offset"):
        TimeSampler(ds, _gen(), time_offset=41)
    with pytest.raises(ValueError, match="time_offset"):
        TimeSampler(ds, _gen(), time_offset=-1)
    with pytest.raises(ValueError, match="receptive field"):
        TimeSampler(_dataset(n=9), _gen())


def test_prior_is_uniform():
    ds = _dataset(n=30, offset=Offset(0, 1))
    sampler = TimeSampler(ds, _gen(2), time_offset=0)
    counts = torch.bincount(sampler.sample_prior(30000), minlength=30).double()
    assert counts.min() > 1000 - 5 * math.sqrt(1000) and counts.max() < 1000 + 5 * math.sqrt(1000)


# -- time_delta ----------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 3])
def test_time_delta_positive_is_nearest_to_target(d):
    labels = _walk(600, d, seed=d)
    ds = _dataset(n=600, continuous=labels[:, 0] if d == 1 else labels)
    time_offset = 7
    sampler = RecordingTimeDelta(ds, _gen(3), time_offset=time_offset)
    ref = sampler.sample_prior(2000)
    pos = sampler.sample_conditional(ref)
    _assert_windows_inside(ds, pos)
    # target = label[ref] + label[t + time_offset] - label[t] for prior draws t
    (t,) = sampler.priors
    assert int(t.min()) >= OFFSET.left and int(t.max()) + time_offset < len(ds) - OFFSET.right + 1
    want = labels[ref] + labels[t + time_offset] - labels[t]
    torch.testing.assert_close(sampler.last_target, want)
    # the positive has the nearest label to the target among the admissible time points
    admissible = labels[OFFSET.left:len(ds) - OFFSET.right + 1]
    _assert_nearest(admissible, pos - OFFSET.left, want)
    assert int(pos.min()) >= OFFSET.left and int(pos.max()) <= len(ds) - OFFSET.right


def test_time_delta_without_internals_small_case():
    # Distinct 1-D labels: every positive is the nearest label to label[ref] + one of the
    # label changes observed over time_offset steps (checked without any sampler internals).
    labels = torch.tensor([0.0, 0.3, 1.1, 1.2, 2.5, 2.6, 4.0, 4.1, 5.9, 7.3, 7.35, 9.0])
    ds = _dataset(n=12, continuous=labels, offset=Offset(0, 1))
    sampler = TimeDeltaSampler(ds, _gen(4), time_offset=2)
    ref = sampler.sample_prior(500)
    pos = sampler.sample_conditional(ref)
    changes = labels[2:] - labels[:-2]
    ok = torch.zeros(len(ref), dtype=torch.bool)
    for change in changes:
        target = labels[ref] + change
        dist = (labels[None, :] - target[:, None]).abs()
        ok |= (labels[pos] - target).abs() <= dist.min(1).values + 1e-6
    assert ok.all()


def test_time_delta_needs_continuous_labels():
    with pytest.raises(ValueError, match="continuous"):
        TimeDeltaSampler(_dataset(), _gen())


# -- delta_normal --------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2])
def test_delta_normal(d):
    labels = _walk(800, d, seed=5)
    ds = _dataset(n=800, continuous=labels)
    delta = 0.2
    sampler = RecordingDeltaNormal(ds, _gen(6), delta=delta)
    ref = sampler.sample_prior(5000)
    pos = sampler.sample_conditional(ref)
    _assert_windows_inside(ds, pos)
    noise = sampler.last_target - labels[ref]
    assert abs(float(noise.mean())) < 0.02
    assert float(noise.std()) == pytest.approx(delta, rel=0.05)
    admissible = labels[OFFSET.left:len(ds) - OFFSET.right + 1]
    _assert_nearest(admissible, pos - OFFSET.left, sampler.last_target)


@pytest.mark.parametrize("delta", [None, 0.0, -1.0])
def test_delta_normal_needs_positive_delta(delta):
    ds = _dataset(continuous=_walk(400, 1, seed=0))
    with pytest.raises(ValueError, match="delta"):
        DeltaNormalSampler(ds, _gen(), delta=delta)


# -- discrete ------------------------------------------------------------------------------
def _imbalanced_labels(n: int, seed: int = 0) -> torch.Tensor:
    # class 0: 80 %, class 3: 15 %, class 7: 5 % (contiguous bouts)
    labels = torch.zeros(n, dtype=torch.long)
    labels[int(0.80 * n):int(0.95 * n)] = 3
    labels[int(0.95 * n):] = 7
    return labels[torch.randperm(n, generator=_gen(seed))]


def test_discrete_same_label():
    labels = _imbalanced_labels(2000)
    ds = _dataset(n=2000, discrete=labels)
    sampler = DiscreteSampler(ds, _gen(7))
    ref = sampler.sample_prior(5000)
    pos = sampler.sample_conditional(ref)
    assert torch.equal(labels[pos], labels[ref])
    _assert_windows_inside(ds, ref)
    _assert_windows_inside(ds, pos)
    # positives are spread over the class members, not one fixed sample
    rare = ref[labels[ref] == 7]
    assert len(torch.unique(sampler.sample_conditional(rare))) > 0.5 * int((labels == 7).sum())


@pytest.mark.parametrize("prior", ["uniform", "empirical"])
def test_discrete_prior(prior):
    labels = _imbalanced_labels(5000)
    ds = _dataset(n=5000, discrete=labels)
    sampler = DiscreteSampler(ds, _gen(8), prior=prior)
    ref = sampler.sample_prior(30000)
    _assert_windows_inside(ds, ref)
    freq = torch.stack([(labels[ref] == k).double().mean() for k in (0, 3, 7)])
    if prior == "uniform":
        expected = torch.full((3,), 1 / 3, dtype=torch.float64)
    else:
        expected = torch.tensor([0.80, 0.15, 0.05], dtype=torch.float64)
    torch.testing.assert_close(freq, expected, atol=0.015, rtol=0)


def test_discrete_errors():
    with pytest.raises(ValueError, match="discrete"):
        DiscreteSampler(_dataset(), _gen())
    with pytest.raises(ValueError, match="prior"):
        DiscreteSampler(_dataset(discrete=torch.zeros(400, dtype=torch.long)), _gen(),
                        prior="balanced")


# -- mixed ---------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 3])
def test_mixed_same_class_nearest_continuous(d):
    n = 1500
    continuous = _walk(n, d, seed=9, step=0.1)
    discrete = (torch.arange(n) // 37) % 4 * 5  # classes 0, 5, 10, 15 in bouts
    ds = _dataset(n=n, continuous=continuous, discrete=discrete)
    sampler = RecordingMixed(ds, _gen(10), time_offset=3)
    ref = sampler.sample_prior(3000)
    pos = sampler.sample_conditional(ref)
    _assert_windows_inside(ds, pos)
    assert torch.equal(discrete[pos], discrete[ref])
    target = sampler.last_target[:, :d]
    (t,) = sampler.priors
    torch.testing.assert_close(target, continuous[ref] + continuous[t + 3] - continuous[t])
    stop = n - OFFSET.right + 1
    for klass in discrete.unique():
        rows = discrete[ref] == klass
        members = torch.arange(OFFSET.left, stop)[discrete[OFFSET.left:stop] == klass]
        got = ((continuous[pos[rows]].double() - target[rows].double()) ** 2).sum(1)
        best = _nearest_squared_distance(continuous[members], target[rows])
        assert torch.all(got <= best + 1e-5)


def test_mixed_needs_both_labels():
    with pytest.raises(ValueError, match="discrete and continuous"):
        MixedSampler(_dataset(continuous=_walk(400, 1, 0)), _gen())
    with pytest.raises(ValueError, match="discrete and continuous"):
        MixedSampler(_dataset(discrete=torch.zeros(400, dtype=torch.long)), _gen())


# -- multi-session -------------------------------------------------------------------------
def _sessions(num: int, d: int = 2, discrete: bool = False, continuous: bool = True,
              lengths=(300, 350, 400, 450)) -> DatasetCollection:
    sessions = []
    for s in range(num):
        n = lengths[s]
        cont = _walk(n, d, seed=20 + s) if continuous else None
        disc = ((torch.arange(n) // (11 + s)) % 3) if discrete else None
        sessions.append(TensorDataset(torch.randn(n, 3 + s, generator=_gen(s)), continuous=cont,
                                      discrete=disc, offset=OFFSET))
    return DatasetCollection(*sessions)


@pytest.mark.parametrize("num", [2, 3, 4])
def test_multi_session_permutation_is_a_derangement(num):
    sampler = MultiSessionSampler(_sessions(num), _gen(11))
    seen = set()
    for _ in range(200):
        sigma = sampler.permutation()
        assert sorted(sigma) == list(range(num))
        assert all(sigma[s] != s for s in range(num))
        seen.add(tuple(sigma))
    if num == 3:
        assert seen == {(1, 2, 0), (2, 0, 1)}
    if num == 4:
        assert len(seen) >= 6  # cyclic derangements of 4: 6 four-cycles


@pytest.mark.parametrize("conditional", ["time_delta", "delta_normal"])
def test_multi_session_continuous_positive_is_nearest_in_target_session(conditional):
    data = _sessions(3)
    sampler = MultiSessionSampler(data, _gen(12), conditional=conditional, time_offset=4,
                                  delta=0.1 if conditional == "delta_normal" else None)
    targets = {}
    for s, sub in enumerate(sampler.samplers):
        def record(reference, _sub=sub, _s=s, _orig=sub.target):
            targets[_s] = _orig(reference)
            return targets[_s]
        sub.target = record
    for _ in range(5):
        reference, positive, negative, sigma = sampler.sample(256)
        assert len(reference) == len(positive) == len(negative) == 3
        for s in range(3):
            target_session = data.get_session(sigma[s])
            _assert_windows_inside(data.get_session(s), reference[s])
            _assert_windows_inside(data.get_session(s), negative[s])
            _assert_windows_inside(target_session, positive[sigma[s]])
            labels = target_session.continuous
            admissible = labels[OFFSET.left:len(target_session) - OFFSET.right + 1]
            _assert_nearest(admissible, positive[sigma[s]] - OFFSET.left, targets[s])
            # the target is built from the *source* session's label of the reference
            source = data.get_session(s).continuous
            change = targets[s] - source[reference[s]]
            if conditional == "time_delta":
                # ... plus a label change observed over time_offset steps in that session
                observed = source[4:] - source[:-4]
                gap = torch.cdist(change, observed, compute_mode="donot_use_mm_for_euclid_dist")
                assert gap.min(1).values.max() < 1e-5
            else:
                assert float(change.std()) == pytest.approx(0.1, rel=0.15)


def test_multi_session_discrete_same_label():
    data = _sessions(3, discrete=True, continuous=False)
    sampler = MultiSessionSampler(data, _gen(13), conditional="discrete")
    for _ in range(5):
        reference, positive, negative, sigma = sampler.sample(300)
        for s in range(3):
            src, dst = data.get_session(s), data.get_session(sigma[s])
            assert sigma[s] != s
            assert torch.equal(dst.discrete[positive[sigma[s]]], src.discrete[reference[s]])
            _assert_windows_inside(dst, positive[sigma[s]])
            _assert_windows_inside(src, negative[s])


def test_multi_session_time_only():
    data = _sessions(3, continuous=False)
    sampler = MultiSessionSampler(data, _gen(14), conditional="time", time_offset=6)
    reference, positive, negative, sigma = sampler.sample(200)
    assert sigma == [0, 1, 2]
    for s in range(3):
        assert torch.equal(positive[s], reference[s] + 6)
        _assert_windows_inside(data.get_session(s), positive[s])
        _assert_windows_inside(data.get_session(s), negative[s])


def test_multi_session_errors():
    data = _sessions(2, discrete=True, continuous=False)
    other = data.get_session(1)
    other.discrete = other.discrete.clone()
    other.discrete[other.discrete == 2] = 5  # classes {0, 1, 5} vs {0, 1, 2}
    with pytest.raises(ValueError, match="Discrete labels differ"):
        MultiSessionSampler(data, _gen(), conditional="discrete")
    with pytest.raises(ValueError, match="conditional"):
        MultiSessionSampler(_sessions(2), _gen(), conditional="nearest")
    with pytest.raises(ValueError, match="continuous"):
        MultiSessionSampler(_sessions(2, continuous=False), _gen(), conditional="time_delta")


def test_single_session_collection_is_not_permuted():
    sampler = MultiSessionSampler(_sessions(1), _gen(15))
    assert sampler.permutation() == [0]
    reference, positive, _, sigma = sampler.sample(32)
    assert sigma == [0] and positive[0].shape == reference[0].shape == (32,)
