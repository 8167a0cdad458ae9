"""``CEBRA.fit`` / ``transform`` with segments and with trial-structured input."""

from __future__ import annotations

import numpy as np
import pytest

from cebra_pipe import CEBRA
from cebra_pipe.sklearn.inputs import check_session

FAST = dict(model_architecture="offset10-model", max_iterations=5, batch_size=32,
            device="cpu", random_state=0, output_dimension=3, num_hidden_units=8,
            time_offsets=3)
RECEPTIVE_FIELD = 10


def _data(trials: int = 6, steps: int = 40, neurons: int = 7, seed: int = 0):
    """Trial-structured recording ``(trials, steps, neurons)`` and position labels."""
    rng = np.random.default_rng(seed)
    neural = rng.normal(size=(trials, steps, neurons)).astype(np.float32)
    position = np.cumsum(rng.normal(size=(trials, steps, 2)), 1).astype(np.float32) * 0.1
    return neural, position


def _flat(neural, position):
    trials, steps = neural.shape[:2]
    return (neural.reshape(trials * steps, -1), position.reshape(trials * steps, -1),
            np.repeat(np.arange(trials), steps))


def _run_of(segments: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(segments[1:] != segments[:-1])])


@pytest.mark.parametrize("pad", [True, False])
def test_transform_embeds_each_segment_on_its_own(pad):
    neural, position = _data()
    X, y, _ = _flat(neural, position)
    # 5 segments: the two runs of id 1 are one segment, id 4 comes back after a seam
    segments = np.repeat([4, 1, 1, 7, 4, 2], [50, 30, 20, 45, 60, 35])
    model = CEBRA(**FAST, pad_before_transform=pad).fit(X, y)
    got = model.transform(X, segments=segments)
    bounds = np.flatnonzero(np.diff(segments)) + 1
    expected = np.concatenate([model.transform(part) for part in np.split(X, bounds)])
    np.testing.assert_array_equal(got, expected)
    whole = model.transform(X)
    assert got.shape == ((len(X), 3) if pad else (len(X) - 5 * (RECEPTIVE_FIELD - 1), 3))
    if pad:  # next to a seam the windows differ from those of the whole recording
        assert not np.allclose(got[50:53], whole[50:53])
    np.testing.assert_array_equal(model.transform(X, segments=np.zeros(len(X), int)), whole)


def test_trial_input_equals_concatenated_trials_with_trial_segments():
    neural, position = _data()
    X, y, trial = _flat(neural, position)
    trials_model = CEBRA(**FAST).fit(neural, position)
    flat_model = CEBRA(**FAST).fit(X, y, segments=trial)
    embedding = trials_model.transform(neural)
    assert embedding.shape == (6, 40, 3)
    np.testing.assert_array_equal(embedding.reshape(-1, 3),
                                  flat_model.transform(X, segments=trial))
    np.testing.assert_array_equal(embedding[2], trials_model.transform(neural[2]))
    np.testing.assert_array_equal(trials_model.fit_transform(neural, position), embedding)
    # discrete trial labels (trials, time) and a (trials, time) float label
    direction = np.repeat(np.arange(6)[:, None] % 2, 40, 1)
    CEBRA(**FAST).fit(neural, position[..., 0], direction)


def test_segments_change_training_and_constant_ids_do_not():
    neural, position = _data()
    X, y, trial = _flat(neural, position)
    plain = CEBRA(**FAST).fit(X, y).transform(X)
    constant = CEBRA(**FAST).fit(X, y, segments=np.full(len(X), 3)).transform(X)
    segmented = CEBRA(**FAST).fit(X, y, segments=trial).transform(X)
    np.testing.assert_array_equal(plain, constant)
    assert not np.array_equal(plain, segmented)


@pytest.mark.parametrize("labels", ["time", "continuous", "discrete", "mixed", "hybrid"])
def test_fitted_loader_keeps_windows_inside_segments(labels):
    neural, position = _data(trials=8)
    X, y, trial = _flat(neural, position)
    discrete = (np.arange(len(X)) // 25) % 3
    args = {"time": (), "continuous": (y,), "discrete": (discrete,),
            "mixed": (y, discrete), "hybrid": (y,)}[labels]
    model = CEBRA(**FAST, hybrid=labels == "hybrid").fit(X, *args, segments=trial)
    loader = model.make_loader([check_session(X, args, trial)], 20, seed=1)
    run = _run_of(trial)
    left, right = model.offset_.left, model.offset_.right
    for batch in range(20):
        index = loader.get_indices(32)
        for name in ("reference", "positive", "negative", "positive_time"):
            rows = getattr(index, name)
            if rows is None:
                continue
            rows = rows.numpy()
            assert np.array_equal(run[rows - left], run[rows + right - 1]), (batch, name)


def test_multi_session_and_partial_fit_take_segments():
    neural, position = _data()
    X, y, trial = _flat(neural, position)
    X2, y2, _ = _flat(*_data(trials=4, steps=50, neurons=5, seed=1))
    model = CEBRA(**FAST).fit([X, X2], [y, y2], segments=[trial, None])
    assert model.transform(X, session_id=0, segments=trial).shape == (len(X), 3)
    model.partial_fit([X, X2], [y, y2], segments=[trial, np.arange(len(X2)) // 50])
    # trial-structured sessions in a list
    trials_model = CEBRA(**FAST).fit([neural, neural[:3]], [position, position[:3]])
    assert trials_model.transform(neural[:3], session_id=1).shape == (3, 40, 3)
    single = CEBRA(**FAST)
    single.partial_fit(X, y, segments=trial)
    before = single.transform(X, segments=trial)
    single.partial_fit(X, y, segments=trial)
    assert not np.array_equal(before, single.transform(X, segments=trial))


def test_short_segments_warn_with_the_samples_lost_and_fail_when_nothing_is_left():
    neural, position = _data()
    X, y, _ = _flat(neural, position)
    segments = np.repeat(np.arange(5), [100, 4, 6, 100, 30])
    with pytest.warns(UserWarning, match=r"segments: 2 of 5 segments are shorter than the "
                                         r"model's receptive field of 10 samples; their 10 "):
        CEBRA(**FAST).fit(X, y, segments=segments)
    with pytest.raises(ValueError, match=r"segments: every one of the 30 segments is shorter"):
        CEBRA(**FAST).fit(X, y, segments=np.arange(len(X)) // 8)
    with pytest.raises(ValueError, match=r"segments\[1\]: every one"):
        CEBRA(**FAST).fit([X, X], [y, y], segments=[None, np.arange(len(X)) // 8])
    with pytest.raises(ValueError, match=r"X \(trials\): every one of the 6 segments"):
        CEBRA(**FAST).fit(neural[:, :8], position[:, :8])
    model = CEBRA(**FAST, pad_before_transform=False).fit(X, y)
    with pytest.raises(ValueError, match=r"segments: 2 segment\(s\) are shorter"):
        model.transform(X, segments=segments)


@pytest.mark.parametrize("segments, error, match", [
    (np.zeros(239, int), ValueError, "segments has 239 samples but the neural data has 240"),
    (np.linspace(0, 3, 240), TypeError, "segments must hold integer segment ids"),
    (np.zeros((240, 2), int), ValueError, r"segments must be 1-D \(time,\)"),
    (np.array(["a"] * 240), TypeError, "segments must be numeric"),
])
def test_bad_segments_name_the_argument(segments, error, match):
    neural, position = _data()
    X, y, _ = _flat(neural, position)
    with pytest.raises(error, match=match):
        CEBRA(**FAST).fit(X, y, segments=segments)
    model = CEBRA(**FAST).fit(X, y)
    with pytest.raises(error, match=match):
        model.transform(X, segments=segments)


def test_bad_multi_session_and_trial_input():
    neural, position = _data()
    X, y, trial = _flat(neural, position)
    with pytest.raises(ValueError, match=r"segments must be a list with one \(time,\) array"):
        CEBRA(**FAST).fit([X, X], [y, y], segments=trial)
    with pytest.raises(ValueError, match=r"segments\[1\] has 10 samples"):
        CEBRA(**FAST).fit([X, X], [y, y], segments=[trial, trial[:10]])
    with pytest.raises(ValueError, match="segments was given with trial-structured X"):
        CEBRA(**FAST).fit(neural, position, segments=trial)
    with pytest.raises(ValueError, match=r"y\[0\] has shape \(6, 39, 2\), but X holds 6 "
                                         r"trials of 40 time steps"):
        CEBRA(**FAST).fit(neural, position[:, :39])
    with pytest.raises(ValueError, match=r"y\[0\] has shape \(240, 2\), but X holds"):
        CEBRA(**FAST).fit(neural, y)
    model = CEBRA(**FAST).fit(neural, position)
    with pytest.raises(ValueError, match="segments was given with trial-structured X"):
        model.transform(neural, segments=trial)
    with pytest.raises(ValueError, match=r"transform embeds one recording at a time"):
        model.transform([X, X])


def test_fit_seeds_with_segments_equals_solo_fits():
    from cebra_pipe.sklearn.ensemble import fit_seeds

    neural, position = _data()
    X, y, trial = _flat(neural, position)
    params = {k: v for k, v in FAST.items() if k != "random_state"}
    members = fit_seeds(params, X, y, seeds=[0, 1], backend="loop", segments=trial)
    for seed, member in zip([0, 1], members):
        solo = CEBRA(**params, random_state=seed).fit(X, y, segments=trial)
        np.testing.assert_array_equal(member.transform(X, segments=trial),
                                      solo.transform(X, segments=trial))


def test_goodness_of_fit_samples_inside_segments():
    from cebra_pipe.sklearn.metrics import goodness_of_fit_score, infonce_loss

    neural, position = _data()
    X, y, trial = _flat(neural, position)
    model = CEBRA(**FAST).fit(X, y, segments=trial)
    plain = goodness_of_fit_score(model, X, y, num_batches=3)
    assert goodness_of_fit_score(model, X, y, num_batches=3,
                                 segments=np.zeros(len(X), int)) == plain
    assert infonce_loss(model, X, y, num_batches=3, segments=trial) != \
        infonce_loss(model, X, y, num_batches=3)
    with pytest.raises(ValueError, match="segments has 10 samples"):
        goodness_of_fit_score(model, X, y, num_batches=3, segments=trial[:10])


def test_full_batch_and_adapt_take_segments():
    neural, position = _data()
    X, y, trial = _flat(neural, position)
    model = CEBRA(**{**FAST, "batch_size": None}).fit(X, y, segments=trial)
    # every reference of the full batch has its window and its partner in one trial
    # (6 trials x (40 - 10 + 1 - 3)), instead of 240 - 10 + 1 - 3 without seams
    assert model.num_negatives_ == 6 * 28
    assert CEBRA(**{**FAST, "batch_size": None}).fit(X, y).num_negatives_ == 228
    X_other = np.random.default_rng(5).normal(size=(240, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="1 of 7 segments are shorter"):
        model.fit(X_other, y, adapt=True, segments=np.append(trial, 6)[1:])
    assert model.transform(X_other, segments=trial).shape == (240, 3)
