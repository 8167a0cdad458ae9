"""Tests of the single- and multi-session loaders."""

from __future__ import annotations

import pytest
import torch

from cebra_pipe.data import (
    Batch,
    DatasetCollection,
    MultiSessionBatch,
    Offset,
    TensorDataset,
)
from cebra_pipe.data.multi_session import (
    ContinuousMultiSessionDataLoader,
    DiscreteMultiSessionDataLoader,
)
from cebra_pipe.data.single_session import (
    ContinuousDataLoader,
    DiscreteDataLoader,
    HybridDataLoader,
    MixedDataLoader,
)

OFFSET = Offset(5, 5)
N = 500


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _dataset(n: int = N, continuous: bool = True, discrete: bool = False, d: int = 2,
             seed: int = 0, neurons: int = 4) -> TensorDataset:
    gen = _gen(seed)
    # neural[t] encodes t, so windows can be mapped back to their time index
    neural = torch.randn(n, neurons, generator=gen)
    neural[:, 0] = torch.arange(n, dtype=torch.float32)
    cont = torch.cumsum(torch.randn(n, d, generator=gen) * 0.05, 0) if continuous else None
    disc = (torch.arange(n) // 23) % 3 if discrete else None
    return TensorDataset(neural, continuous=cont, discrete=disc, offset=OFFSET)


def _centre_times(windows: torch.Tensor) -> torch.Tensor:
    """Time index of each window ``(batch, neurons, len(OFFSET))``."""
    return windows[:, 0, OFFSET.left].long()


_FACTORIES = {
    "time": lambda seed: ContinuousDataLoader(_dataset(continuous=False), 5, 64,
                                              conditional="time", seed=seed),
    "time_delta": lambda seed: ContinuousDataLoader(_dataset(), 5, 64,
                                                    conditional="time_delta", seed=seed),
    "delta_normal": lambda seed: ContinuousDataLoader(_dataset(), 5, 64,
                                                      conditional="delta_normal", delta=0.1,
                                                      seed=seed),
    "discrete": lambda seed: DiscreteDataLoader(_dataset(continuous=False, discrete=True), 5,
                                                64, prior="uniform", seed=seed),
    "mixed": lambda seed: MixedDataLoader(_dataset(discrete=True), 5, 64, seed=seed),
    "hybrid": lambda seed: HybridDataLoader(_dataset(), 5, 64, seed=seed),
    "multi_continuous": lambda seed: ContinuousMultiSessionDataLoader(_collection(), 5, 32,
                                                                      seed=seed),
    "multi_discrete": lambda seed: DiscreteMultiSessionDataLoader(
        _collection(discrete=True, continuous=False), 5, 32, seed=seed),
    "multi_time": lambda seed: ContinuousMultiSessionDataLoader(_collection(continuous=False),
                                                                5, 32, seed=seed),
}


def _loader(name: str, seed: int):
    """A loader of kind ``name`` on fresh datasets."""
    return _FACTORIES[name](seed)


def _collection(num: int = 3, continuous: bool = True, discrete: bool = False):
    return DatasetCollection(*[_dataset(n=N + 50 * s, continuous=continuous, discrete=discrete,
                                        seed=s, neurons=3 + s) for s in range(num)])


def _flatten(batch) -> list[torch.Tensor]:
    if isinstance(batch, MultiSessionBatch):
        return [t for b in batch.batches for t in _flatten(b)] + [torch.tensor(batch.permutation)]
    return [t for t in (batch.reference, batch.positive, batch.negative, batch.positive_time)
            if t is not None]


def _same(a, b) -> bool:
    fa, fb = _flatten(a), _flatten(b)
    return len(fa) == len(fb) and all(torch.equal(x, y) for x, y in zip(fa, fb))


# -- batches -------------------------------------------------------------------------------
def test_batches_shapes_and_length():
    for name in _FACTORIES:
        loader = _loader(name, 0)
        batches = list(loader)
        assert len(loader) == 5 and len(batches) == 5, name
        for batch in batches:
            if isinstance(batch, MultiSessionBatch):
                assert len(batch.batches) == 3
                for s, b in enumerate(batch.batches):
                    for t in (b.reference, b.positive, b.negative):
                        assert t.shape == (32, 3 + s, len(OFFSET)), name
            else:
                assert isinstance(batch, Batch)
                for t in (batch.reference, batch.positive, batch.negative):
                    assert t.shape == (64, 4, len(OFFSET)), name
                    assert t.dtype == torch.float32
                assert (batch.positive_time is not None) == (name == "hybrid")


def test_windows_are_cut_around_the_index():
    loader = ContinuousDataLoader(_dataset(continuous=False), 1, 128, conditional="time",
                                  time_offset=10, seed=1)
    index = loader.get_indices(128)
    batch = loader.load(index)
    assert torch.equal(_centre_times(batch.reference), index.reference)
    assert torch.equal(_centre_times(batch.positive), index.reference + 10)
    steps = torch.arange(-OFFSET.left, OFFSET.right, dtype=torch.float32)
    torch.testing.assert_close(batch.reference[:, 0, :], index.reference[:, None] + steps)


def test_time_fallback_without_labels():
    loader = ContinuousDataLoader(_dataset(continuous=False), 2, 64, conditional="time_delta",
                                  time_offset=3, seed=0)
    assert loader.conditional == "time"
    index = loader.get_indices(64)
    assert torch.equal(index.positive, index.reference + 3)


def test_hybrid_loader_gives_both_positives():
    ds = _dataset(d=1)
    loader = HybridDataLoader(ds, 3, 256, time_offset=4, seed=2)
    index = loader.get_indices(256)
    assert torch.equal(index.positive_time, index.reference + 4)
    # the behaviour positive is a nearest label to label[ref] + an observed change
    labels = ds.continuous[:, 0]
    changes = labels[4:] - labels[:-4]
    target_error = (labels[index.positive] - labels[index.reference])[:, None] - changes[None]
    assert target_error.abs().min(1).values.max() < 0.05
    assert not torch.equal(index.positive, index.positive_time)
    batch = loader.load(index)
    assert torch.equal(_centre_times(batch.positive_time), index.reference + 4)
    assert torch.equal(_centre_times(batch.positive), index.positive)
    for idx in (index.reference, index.positive, index.negative, index.positive_time):
        assert int(idx.min()) >= OFFSET.left and int(idx.max()) <= N - OFFSET.right


def test_full_batch_continuous_loader():
    ds = _dataset(continuous=False)
    loader = ContinuousDataLoader(ds, 2, None, conditional="time", time_offset=2, seed=0)
    index = loader.get_indices(None)
    expected = torch.arange(OFFSET.left, N - OFFSET.right + 1 - 2)
    assert torch.equal(index.reference, expected)
    assert torch.equal(index.positive, expected + 2)
    assert torch.equal(index.negative.sort().values, expected)
    assert not torch.equal(index.negative, expected)
    assert len(list(loader)) == 2


def test_multi_session_loader_pairs_sessions():
    data = _collection(discrete=True, continuous=False)
    loader = DiscreteMultiSessionDataLoader(data, 3, 64, seed=3)
    for batch in loader:
        sigma = batch.permutation
        assert sorted(sigma) == [0, 1, 2] and all(sigma[s] != s for s in range(3))
        for s in range(3):
            ref_t = _centre_times(batch.batches[s].reference)
            pos_t = _centre_times(batch.batches[sigma[s]].positive)
            assert torch.equal(data.get_session(sigma[s]).discrete[pos_t],
                               data.get_session(s).discrete[ref_t])


def test_multi_session_time_only_loader():
    loader = ContinuousMultiSessionDataLoader(_collection(continuous=False), 2, 16,
                                              conditional="time_delta", time_offset=7, seed=0)
    assert loader.conditional == "time"
    for batch in loader:
        assert batch.permutation == [0, 1, 2]
        for b in batch.batches:
            assert torch.equal(_centre_times(b.positive), _centre_times(b.reference) + 7)


# -- determinism ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(_FACTORIES))
def test_seeded_loaders_repeat_and_differ(name):
    first = list(_loader(name, 11))
    again = list(_loader(name, 11))
    other = list(_loader(name, 12))
    assert all(_same(a, b) for a, b in zip(first, again))
    assert not all(_same(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("name", list(_FACTORIES))
def test_state_dict_replays_future_batches(name):
    loader = _loader(name, 5)
    batches = iter(loader)
    next(batches), next(batches)
    state = loader.state_dict()
    future = [loader.load(loader.get_indices(loader.batch_size)) for _ in range(3)]
    # the same loader, rewound
    loader.load_state_dict(state)
    rewound = [loader.load(loader.get_indices(loader.batch_size)) for _ in range(3)]
    assert all(_same(a, b) for a, b in zip(future, rewound))
    # a fresh loader with another seed, as after a restart from a checkpoint
    fresh = _loader(name, 99)
    fresh.load_state_dict(state)
    resumed = [fresh.load(fresh.get_indices(fresh.batch_size)) for _ in range(3)]
    assert all(_same(a, b) for a, b in zip(future, resumed))


def test_state_dict_survives_torch_save(tmp_path):
    loader = _loader("multi_continuous", 6)
    list(loader)
    torch.save(loader.state_dict(), tmp_path / "state.pt")
    future = loader.get_indices(32)
    fresh = _loader("multi_continuous", 7)
    fresh.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    again = fresh.get_indices(32)
    assert future[3] == again[3]
    assert all(torch.equal(a, b) for a, b in zip(future[0] + future[1], again[0] + again[1]))


def test_unseeded_loaders_draw_from_torch_rng():
    torch.manual_seed(0)
    a = ContinuousDataLoader(_dataset(), 1, 64).get_indices(64)
    torch.manual_seed(0)
    b = ContinuousDataLoader(_dataset(), 1, 64).get_indices(64)
    c = ContinuousDataLoader(_dataset(), 1, 64).get_indices(64)
    assert torch.equal(a.reference, b.reference)
    assert not torch.equal(a.reference, c.reference)


# -- bad input -----------------------------------------------------------------------------
def test_time_offset_beyond_recording():
    loader = ContinuousDataLoader(_dataset(n=40, continuous=False), 1, 8, conditional="time",
                                  time_offset=100, seed=0)
    with pytest.raises(ValueError, match="time_offset"):
        loader.get_indices(8)
    loader = ContinuousMultiSessionDataLoader(_collection(), 1, 8, time_offset=N, seed=0)
    with pytest.raises(ValueError, match="time_offset"):
        loader.get_indices(8)


@pytest.mark.parametrize("make", [
    lambda: DiscreteDataLoader(_dataset(discrete=True), 1, None),
    lambda: MixedDataLoader(_dataset(discrete=True), 1, None),
    lambda: HybridDataLoader(_dataset(), 1, None),
    lambda: ContinuousMultiSessionDataLoader(_collection(), 1, None),
    lambda: DiscreteMultiSessionDataLoader(_collection(discrete=True), 1, None),
])
def test_batch_size_none_where_unsupported(make):
    with pytest.raises(ValueError, match="batch_size"):
        make()


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_batch_size_and_steps(bad):
    with pytest.raises(ValueError, match="batch_size"):
        ContinuousDataLoader(_dataset(), 1, bad)
    with pytest.raises(ValueError, match="num_steps"):
        ContinuousDataLoader(_dataset(), -1, 8)


def test_missing_labels():
    with pytest.raises(ValueError, match="discrete"):
        DiscreteDataLoader(_dataset(), 1, 8)
    with pytest.raises(ValueError, match="discrete and continuous"):
        MixedDataLoader(_dataset(), 1, 8)
    with pytest.raises(ValueError, match="discrete and continuous"):
        MixedDataLoader(_dataset(continuous=False, discrete=True), 1, 8)
    with pytest.raises(ValueError, match="discrete labels"):
        DiscreteMultiSessionDataLoader(_collection(), 1, 8)
    mixed = DatasetCollection(_dataset(), _dataset(continuous=False))
    with pytest.raises(ValueError, match="continuous labels"):
        ContinuousMultiSessionDataLoader(mixed, 1, 8)
    loader = ContinuousDataLoader(_dataset(), 1, 8, conditional="delta_normal")  # no delta
    with pytest.raises(ValueError, match="delta"):
        loader.get_indices(8)


def test_bad_conditional_and_dataset_types():
    with pytest.raises(ValueError, match="conditional"):
        ContinuousDataLoader(_dataset(), 1, 8, conditional="nearest")
    with pytest.raises(ValueError, match="conditional"):
        MixedDataLoader(_dataset(discrete=True), 1, 8, conditional="delta_normal")
    with pytest.raises(ValueError, match="conditional"):
        ContinuousMultiSessionDataLoader(_collection(), 1, 8, conditional="nearest").get_indices(8)
    with pytest.raises(TypeError, match="TensorDataset"):
        ContinuousDataLoader(_collection(), 1, 8)
    with pytest.raises(TypeError, match="DatasetCollection"):
        ContinuousMultiSessionDataLoader(_dataset(), 1, 8)


def test_differing_class_sets_raise():
    a = _dataset(discrete=True, continuous=False)
    b = _dataset(discrete=True, continuous=False, seed=1)
    b.discrete = b.discrete + 1  # {1, 2, 3} vs {0, 1, 2}
    loader = DiscreteMultiSessionDataLoader(DatasetCollection(a, b), 1, 8, seed=0)
    with pytest.raises(ValueError, match="differ between sessions"):
        loader.get_indices(8)


def test_sampler_follows_the_receptive_field():
    ds = _dataset(continuous=False)
    loader = ContinuousDataLoader(ds, 1, 2000, conditional="time", time_offset=1, seed=0)
    assert int(loader.get_indices(2000).reference.min()) == OFFSET.left
    ds.offset = Offset(20, 30)  # e.g. configure_for a bigger model
    index = loader.get_indices(2000)
    assert int(index.reference.min()) >= 20 and int(index.positive.max()) <= N - 30
    assert loader.load(index).reference.shape[-1] == 50
