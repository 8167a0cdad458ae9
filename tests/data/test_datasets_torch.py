"""Tests of ``TensorDataset`` and ``DatasetCollection``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cebra_pipe.models
from cebra_pipe.data import BatchIndex, DatasetCollection, Offset, TensorDataset


def test_windows_and_valid_range():
    neural = np.arange(40, dtype=np.float64).reshape(20, 2)
    ds = TensorDataset(neural, offset=Offset(2, 3))
    assert len(ds) == 20 and ds.input_dimension == 2
    assert ds.neural.dtype == torch.float32
    assert ds.valid_range() == (2, 18)
    windows = ds[torch.tensor([2, 17])]
    assert windows.shape == (2, 2, 5)
    torch.testing.assert_close(windows[0, 0], torch.tensor([0.0, 2, 4, 6, 8]))
    torch.testing.assert_close(windows[1, 1], torch.tensor([31.0, 33, 35, 37, 39]))


def test_configure_for_model():
    ds = TensorDataset(torch.randn(100, 3))
    model = cebra_pipe.models.init("offset10-model", num_neurons=3, num_units=4, num_output=2)
    ds.configure_for(model)
    assert ds.offset == Offset(5, 5)
    batch = ds.load_batch(BatchIndex(reference=torch.tensor([5, 6]), positive=torch.tensor([7, 8]),
                                     negative=torch.tensor([94, 50])))
    assert batch.reference.shape == (2, 3, 10)
    assert model(batch.reference).shape == (2, 2)
    assert batch.positive_time is None


def test_labels_shapes():
    ds = TensorDataset(torch.randn(30, 3), continuous=np.zeros(30), discrete=np.ones((30, 1)))
    assert ds.continuous.shape == (30, 1) and ds.continuous.dtype == torch.float32
    assert ds.discrete.shape == (30,) and ds.discrete.dtype == torch.long
    with pytest.raises(ValueError, match="discrete must be 1-D"):
        TensorDataset(torch.randn(30, 3), discrete=np.ones((30, 2)))


@pytest.mark.parametrize("key", ["continuous", "discrete"])
def test_length_mismatch(key):
    with pytest.raises(ValueError, match=f"{key} has 29 samples but neural has 30"):
        TensorDataset(torch.randn(30, 3), **{key: np.zeros(29)})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(bad):
    neural = np.random.default_rng(0).normal(size=(30, 3))
    neural[4, 1] = bad
    with pytest.raises(ValueError, match="neural contains NaN"):
        TensorDataset(neural)
    with pytest.raises(ValueError, match="continuous contains NaN"):
        TensorDataset(np.zeros((30, 3)), continuous=neural)


def test_bad_shapes_and_types():
    with pytest.raises(ValueError, match="neural must have shape"):
        TensorDataset(np.zeros(30))
    with pytest.raises(ValueError, match="neural must have shape"):
        TensorDataset(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="neural must be numeric"):
        TensorDataset(np.array([["a", "b"]]))
    ds = TensorDataset(np.zeros((8, 2)), offset=Offset(5, 5))
    with pytest.raises(ValueError, match="receptive field of 10"):
        ds.valid_range()


def test_offset():
    assert len(Offset(22, 23)) == 45
    assert Offset(5) == Offset(5, 5)
    assert Offset(0, 1) != Offset(1, 0)
    assert hash(Offset(2, 3)) == hash(Offset(2, 3))
    for bad in [(-1, 2), (0, 0), (2, -1)]:
        with pytest.raises(ValueError, match="Offset"):
            Offset(*bad)


def test_collection():
    a, b = TensorDataset(torch.randn(50, 3)), TensorDataset(torch.randn(60, 5))
    coll = DatasetCollection(a, b)
    assert coll.num_sessions == len(coll) == 2
    assert coll.input_dimension == [3, 5]
    assert coll.get_session(1) is b and list(coll) == [a, b]
    assert DatasetCollection([a, b]).num_sessions == 2
    models = [cebra_pipe.models.init("offset5-model", num_neurons=n, num_units=4, num_output=2)
              for n in (3, 5)]
    coll.configure_for(models)
    assert a.offset == b.offset == Offset(2, 3)
    with pytest.raises(ValueError, match="2 sessions"):
        coll.configure_for(models[:1])
    with pytest.raises(ValueError, match="at least one"):
        DatasetCollection()
    with pytest.raises(TypeError, match="session 1"):
        DatasetCollection(a, np.zeros((3, 3)))


def test_load_batch_gathers_once_and_stacks_without_copy():
    dataset = TensorDataset(torch.randn(100, 7), offset=Offset(5, 5))
    index = [torch.randint(5, 96, (8,)) for _ in range(4)]
    batch = dataset.load_batch(BatchIndex(*index[:3], positive_time=index[3]))
    steps = torch.arange(-5, 5)
    expected = {name: dataset.neural[i[:, None] + steps].transpose(1, 2) for name, i in
                zip(["reference", "positive", "negative", "positive_time"], index)}
    for name, windows in expected.items():
        assert torch.equal(getattr(batch, name), windows)
    stacked = batch.stacked("reference", "positive", "positive_time", "negative")
    assert stacked.data_ptr() == batch.reference.data_ptr()  # no copy
    assert torch.equal(stacked, torch.cat([expected[n] for n in
                                           ["reference", "positive", "positive_time", "negative"]]))
    # Parts out of order are not adjacent: a copy, still the right windows.
    reordered = batch.stacked("negative", "reference")
    assert torch.equal(reordered, torch.cat([expected["negative"], expected["reference"]]))


def test_non_integer_discrete_labels_are_refused():
    neural = np.zeros((6, 2))
    with pytest.raises(TypeError, match="discrete labels must be integers"):
        TensorDataset(neural, discrete=np.array([0, 0.5, 1, 1, 2, 2]))
    # Whole numbers stored as floats are class ids all the same.
    dataset = TensorDataset(neural, discrete=torch.tensor([0.0, 1, 1, 2, 2, 0]))
    assert dataset.discrete.dtype == torch.int64
