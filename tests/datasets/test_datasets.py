"""Tests for the dataset registry and the synthetic datasets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor

import cebra_pipe as cebra
from cebra_pipe.datasets import Recording, RecordingSet
from cebra_pipe.datasets.linear_track import ANIMALS, TRACK_LENGTH_M

ALL = cebra.datasets.get_options()
LINEAR_TRACK = ("synthetic-linear-track", "synthetic-linear-track-rat1",
                "synthetic-linear-track-cohort")


def sessions(data: Recording | RecordingSet) -> list[Recording]:
    return data.sessions if isinstance(data, RecordingSet) else [data]


def same(a: Recording | RecordingSet, b: Recording | RecordingSet) -> bool:
    def fields(r: Recording):
        return [r.neural, r.continuous, r.discrete, r.latent]

    return all((x is None and y is None) or np.array_equal(x, y)
               for ra, rb in zip(sessions(a), sessions(b), strict=True)
               for x, y in zip(fields(ra), fields(rb)))


@pytest.fixture(scope="module")
def built() -> dict[str, Recording | RecordingSet]:
    return {name: cebra.datasets.init(name) for name in ALL}


# -------------------------------------------------------------------- registry


def test_registry_lists_the_datasets():
    expected = {"demo-continuous", "demo-discrete", "demo-mixed",
                "demo-continuous-multisession", "demo-discrete-multisession",
                "demo-continuous-unified", "synthetic-linear-track", "synthetic-linear-track-cohort",
                *(f"synthetic-linear-track-{a}" for a in ANIMALS)}
    assert expected <= set(ALL)
    assert set(cebra.datasets.get_options("demo-*")) == {n for n in expected if n.startswith("demo")}
    assert len(cebra.datasets.get_options("*multisession", limit=1)) == 1


def test_unknown_dataset_suggests_names():
    with pytest.raises(ValueError, match="demo-continuous"):
        cebra.datasets.init("demo-continous")


def test_register_custom_dataset():
    @cebra.datasets.register("test-only-constant")
    def constant(num_timesteps: int = 5) -> Recording:
        return Recording(neural=np.ones((num_timesteps, 2)), name="test-only-constant")

    try:
        data = cebra.datasets.init("test-only-constant", num_timesteps=7)
        assert data.neural.shape == (7, 2) and data.neural.dtype == np.float32
        with pytest.raises(ValueError, match="already registered"):
            cebra.datasets.register("test-only-constant")(constant)
    finally:
        cebra.datasets.REGISTRY._factories.pop("test-only-constant", None)
        cebra.datasets.REGISTRY._defaults.pop("test-only-constant", None)


# ---------------------------------------------------------------- every dataset


@pytest.mark.parametrize("name", ALL)
def test_builds_with_consistent_shapes(built, name):
    data = built[name]
    assert isinstance(data, (Recording, RecordingSet))
    for session in sessions(data):
        time, neurons = session.neural.shape
        assert time >= 1000 and neurons >= 10
        assert session.neural.dtype == np.float32 and np.isfinite(session.neural).all()
        assert session.continuous is not None or session.discrete is not None
        if session.continuous is not None:
            assert session.continuous.dtype == np.float32 and len(session.continuous) == time
        if session.discrete is not None:
            assert session.discrete.dtype == np.int64 and session.discrete.shape == (time,)
            assert session.discrete.min() >= 0
        assert session.latent is not None and len(session.latent) == time
        assert session.name


@pytest.mark.parametrize("name", ALL)
def test_deterministic_by_seed(built, name):
    assert same(built[name], cebra.datasets.init(name, seed=0))
    assert not same(built[name], cebra.datasets.init(name, seed=1))


def test_multisession_sessions_differ_in_neurons(built):
    for name in ("demo-continuous-multisession", "demo-discrete-multisession",
                 "synthetic-linear-track-cohort"):
        counts = [s.num_neurons for s in built[name]]
        assert len(set(counts)) == len(counts) > 1, name
    assert [s.num_neurons for s in built["synthetic-linear-track-cohort"]] == [120, 48, 64, 80]


def test_demo_sizes_are_adjustable():
    data = cebra.datasets.init("demo-mixed", num_timesteps=500, num_neurons=7, num_classes=3)
    assert data.neural.shape == (500, 7) and data.continuous.shape == (500, 3)
    assert set(np.unique(data.discrete)) == {0, 1, 2}
    multi = cebra.datasets.init("demo-discrete-multisession", num_sessions=2, num_neurons=5)
    assert [s.num_neurons for s in multi] == [5, 5]
    with pytest.raises(ValueError, match="3 entries for 2 sessions"):
        cebra.datasets.init("demo-continuous-multisession", num_sessions=2,
                            num_neurons=(1, 2, 3))


def test_demo_neural_encodes_the_latent(built):
    data = built["demo-continuous"]
    n = int(0.8 * data.num_timesteps)
    knn = KNeighborsRegressor(10).fit(data.neural[:n], data.continuous[:n])
    assert r2_score(data.continuous[n:], knn.predict(data.neural[n:])) > 0.5


# ----------------------------------------------------------- linear track


def decode_position(recording: Recording) -> float:
    """kNN position decoding R^2, trained on the first 80 % of bins, tested on the rest."""
    features = gaussian_filter1d(np.sqrt(recording.neural), sigma=4, axis=0)
    position = recording.continuous[:, 0]
    n = int(0.8 * len(features))
    knn = KNeighborsRegressor(25).fit(features[:n], position[:n])
    return r2_score(position[n:], knn.predict(features[n:]))


def test_place_cells_encode_position(built):
    for session in built["synthetic-linear-track-cohort"]:
        assert decode_position(session) > 0.5, session.name


def test_shuffled_position_is_not_decodable(built):
    recording = built["synthetic-linear-track"]
    rng = np.random.default_rng(0)
    shuffled = Recording(neural=recording.neural, continuous=rng.permutation(recording.continuous))
    assert decode_position(shuffled) < 0.1


def test_linear_track_behaviour_is_plausible(built):
    recording = built["synthetic-linear-track"]
    position, right, left = recording.continuous.T
    assert recording.num_timesteps == 10_000 and recording.num_neurons == 120
    assert 0.0 <= position.min() < 0.1 and TRACK_LENGTH_M - 0.1 < position.max() <= TRACK_LENGTH_M
    np.testing.assert_array_equal(right + left, 1.0)
    np.testing.assert_array_equal(right, recording.discrete == 0)
    # direction 0 means running right: position increases while running
    speed = recording.metadata["speed_m_s"]
    running = np.abs(speed) > 0.2
    assert np.all((speed[running] > 0) == (recording.discrete[running] == 0))
    assert np.abs(speed).max() < 2.5  # m/s; rats run about 0.5-1.5 m/s
    laps = np.count_nonzero(np.diff(recording.discrete)) / 2
    assert 20 < laps < 80  # in 250 s
    # spike counts: non-negative integers at realistic rates (Hz)
    counts = recording.neural
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    assert 0.3 < counts.mean() / recording.metadata["bin_size_s"] < 5.0


def test_linear_track_latent_matches_labels(built):
    recording = built["synthetic-linear-track"]
    np.testing.assert_allclose(recording.latent[:, 0], recording.continuous[:, 0])
    np.testing.assert_array_equal(recording.latent[:, 1], recording.discrete)
    centers = recording.metadata["place_field_centers"]
    assert centers.shape == (120,) and (0 <= centers).all() and (centers <= TRACK_LENGTH_M).all()


def test_linear_track_animals_and_overrides():
    small = cebra.datasets.init("synthetic-linear-track", animal="rat2", duration=30.0)
    assert small.neural.shape == (1200, 48)
    assert cebra.datasets.init("synthetic-linear-track", animal=1, duration=30.0).neural.shape[1] == 48
    custom = cebra.datasets.init("synthetic-linear-track", num_neurons=40, duration=10.0,
                                 bin_size=0.05)
    assert custom.neural.shape == (200, 40)
    assert same(cebra.datasets.init("synthetic-linear-track-rat3", duration=30.0),
                cebra.datasets.init("synthetic-linear-track", animal="rat3", duration=30.0))
    with pytest.raises(ValueError, match="Unknown animal 'rat9'"):
        cebra.datasets.init("synthetic-linear-track", animal="rat9")
    with pytest.raises(ValueError, match="seed must be a non-negative"):
        cebra.datasets.init("synthetic-linear-track", seed=-1)


def test_cohort_sessions_equal_single_animals(built):
    cohort = built["synthetic-linear-track-cohort"]
    assert cohort.metadata["animals"] == list(ANIMALS)
    assert same(cohort[1], cebra.datasets.init("synthetic-linear-track", animal="rat2"))
    two = cebra.datasets.init("synthetic-linear-track-cohort", animals=["rat4", "rat1"],
                              duration=20.0)
    assert [s.num_neurons for s in two] == [80, 120]


# ------------------------------------------------------------------ containers


def test_recording_casts_and_validates():
    recording = Recording(neural=np.zeros((4, 2), dtype=np.int64), continuous=np.arange(4.0),
                          discrete=np.array([0, 1, 1, 0], dtype=np.int32))
    assert recording.neural.dtype == np.float32
    assert recording.continuous.shape == (4, 1) and recording.continuous.dtype == np.float32
    assert recording.discrete.dtype == np.int64
    with pytest.raises(ValueError, match="continuous has 3 time steps but neural has 4"):
        Recording(neural=np.zeros((4, 2)), continuous=np.zeros(3))
    with pytest.raises(ValueError, match="discrete must be a 1-D integer array"):
        Recording(neural=np.zeros((4, 2)), discrete=np.zeros(4))
    with pytest.raises(ValueError, match="neural must be numeric"):
        Recording(neural=np.array([["a"]]))


def test_recording_set_validates():
    a = Recording(neural=np.zeros((4, 2)), continuous=np.zeros((4, 3)))
    b = Recording(neural=np.zeros((5, 3)), continuous=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="different labels"):
        RecordingSet([a, b])
    with pytest.raises(ValueError, match="non-empty list"):
        RecordingSet([])
    assert len(RecordingSet([a, a])) == 2


# ------------------------------------------------------------------ the reference's protocol


def test_recording_indexes_windows_like_the_reference_datasets():
    """``recording[index]`` gives the windows a model reads, as cebra's datasets do."""
    import torch

    from cebra_pipe.data import Offset

    recording = cebra.datasets.init("demo-mixed", num_timesteps=200, num_neurons=7)
    assert len(recording) == 200 and recording.input_dimension == 7
    assert recording.offset == Offset(0, 1)
    batch = recording[torch.arange(0, 5)]
    assert batch.shape == (5, 7, 1) and batch.dtype == torch.float32
    np.testing.assert_array_equal(batch[:, :, 0].numpy(), recording.neural[:5])
    # labels as tensors, sharing the arrays' values
    assert recording.continuous_index.dtype == torch.float32
    np.testing.assert_array_equal(recording.continuous_index.numpy(), recording.continuous)
    assert recording.discrete_index.dtype == torch.int64
    assert cebra.datasets.init("demo-continuous", num_timesteps=50).discrete_index is None
    # a model's receptive field: windows around each index, [t - left, t + right)
    model = cebra.models.init("offset10-model", num_neurons=7, num_units=8, num_output=3)
    recording.configure_for(model)
    assert recording.offset == Offset(5, 5)
    windows = recording[np.array([5, 100, 195])]
    assert windows.shape == (3, 7, 10)
    np.testing.assert_array_equal(windows[1].numpy(), recording.neural[95:105].T)
    assert model(windows).shape == (3, 3)


@pytest.mark.parametrize(("index", "match"), [
    (np.array([0, 3]), r"indices 0 to 3 given, but windows of Offset\(left=5.*time steps 5 "
                       r"to 195 only"),
    (np.array([10, 196]), "indices 10 to 196 given"),
    (np.array([[5, 6]]), "index must be a 1-D array of integer time steps"),
    (np.array([5.0, 6.0]), "index must be a 1-D array of integer"),
])
def test_recording_index_outside_the_recording_is_refused(index, match):
    recording = cebra.datasets.init("demo-discrete", num_timesteps=200, num_neurons=4)
    recording.offset = (5, 5)
    with pytest.raises(IndexError, match=match):
        recording[index]


def test_recording_tensors_follow_the_arrays():
    recording = Recording(neural=np.zeros((6, 2)), continuous=np.arange(6.0))
    first = recording.tensors()
    assert recording.tensors() is first  # built once
    recording.neural = np.ones((6, 2), dtype=np.float32)
    assert float(recording[np.array([2])].sum()) == 2.0  # rebuilt for new arrays
    sessions = RecordingSet([recording, recording])
    assert sessions.get_session(1) is recording
    with pytest.raises(TypeError, match="not iterable"):  # not a sequence of sessions
        list(recording)
