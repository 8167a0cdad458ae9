"""Evaluation nulls of a fitted model and decoding baselines."""

import numpy as np
import pytest
import sklearn.metrics

import cebra_pipe as cebra
from cebra_pipe.hypothesis import (baseline_scores, decoding_nulls, evaluation_nulls, gof_nulls,
                                   null_orders)


def test_decoding_nulls_match_sklearn_for_every_order():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(200, 2))
    prediction = truth + rng.normal(scale=0.3, size=truth.shape)
    orders = null_orders("circular_shift", 200, 7, min_shift=20, seed=0)
    scores = decoding_nulls(prediction, truth, orders)
    real_r2, null_r2 = scores["r2"]
    assert real_r2 == pytest.approx(sklearn.metrics.r2_score(truth, prediction))
    for k, order in enumerate(orders):
        assert null_r2[k] == pytest.approx(sklearn.metrics.r2_score(truth[order], prediction))
        error = np.linalg.norm(prediction - truth[order], axis=1)
        assert scores["median_abs_error"][1][k] == pytest.approx(np.median(error))


def test_decoding_nulls_accuracy_for_discrete_targets():
    truth = np.array([0, 0, 1, 1, 2, 2])
    prediction = np.array([0, 0, 1, 1, 2, 0])
    orders = np.array([[1, 2, 3, 4, 5, 0]])
    scores = decoding_nulls(prediction, truth, orders)
    assert scores["accuracy"][0] == pytest.approx(5 / 6)
    # truth[order] = 0 1 1 2 2 0 against 0 0 1 1 2 0: positions 0, 2, 4, 5 agree
    assert scores["accuracy"][1][0] == pytest.approx(4 / 6)


def test_decoding_nulls_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="same number of time steps"):
        decoding_nulls(np.zeros(5), np.zeros(6), np.zeros((2, 6), dtype=int))


@pytest.fixture(scope="module")
def encoded_model():
    """A model of neurons tuned to a smooth 1-D variable (plus a foreign smooth one)."""
    rng = np.random.default_rng(0)
    n = 3000
    t = np.arange(n)
    position = (np.sin(t / 60.0) + 1) / 2
    foreign = (np.sin(t / 47.0 + 1.3) + 1) / 2
    centers = np.linspace(0, 1, 30)
    rates = np.exp(-((position[:, None] - centers[None, :]) ** 2) / 0.01)
    neural = (rates + rng.normal(scale=0.3, size=rates.shape)).astype(np.float32)
    cut = 2400
    model = cebra.CEBRA(model_architecture="offset10-model", batch_size=256, max_iterations=150,
                        output_dimension=4, conditional="time_delta", time_offsets=10,
                        random_state=0, device="cpu")
    model.fit(neural[:cut], position[:cut, None].astype(np.float32))
    return model, neural, position.astype(np.float32), foreign.astype(np.float32), cut


def test_encoded_label_beats_its_shifted_nulls(encoded_model):
    model, neural, position, _, cut = encoded_model
    tests = evaluation_nulls(model, neural[:cut], neural[cut:], (position[cut:, None],),
                             {"position": (position[:cut], position[cut:])}, num_nulls=49,
                             min_shift=50, units={"position": "m"})
    by_metric = {t.metric: t for t in tests}
    assert set(by_metric) == {"gof_bits", "r2", "median_abs_error"}
    assert by_metric["median_abs_error"].unit == "m" and by_metric["gof_bits"].unit == "bits"
    for test in tests:
        assert test.null.shape == (49,)
        assert test.p_value == pytest.approx(1 / 50), test
    assert by_metric["median_abs_error"].effect < 0 < by_metric["r2"].effect


def test_gof_nulls_real_score_is_reproducible_and_near_goodness_of_fit(encoded_model):
    model, neural, position, _, cut = encoded_model
    X, y = neural[cut:], (position[cut:, None],)
    orders = null_orders("circular_shift", len(X), 5, min_shift=50, seed=0)
    real, null = gof_nulls(model, X, y, orders, num_batches=20, seed=0)
    again, _ = gof_nulls(model, X, y, orders[:1], num_batches=20, seed=0)
    assert real == again and null.shape == (5,)
    reference = cebra.sklearn.metrics.goodness_of_fit_score(model, X, *y, num_batches=20)
    assert real == pytest.approx(reference, abs=0.1)
    with pytest.raises(ValueError, match="needs the labels"):
        gof_nulls(model, X, (), orders)


def test_foreign_smooth_label_is_not_better_than_its_shifts(encoded_model):
    model, neural, position, foreign, cut = encoded_model
    decoded = evaluation_nulls(model, neural[:cut], neural[cut:], (position[cut:, None],),
                               {"foreign": (foreign[:cut], foreign[cut:])}, num_nulls=49,
                               min_shift=50)
    for test in decoded[1:]:
        assert test.p_value > 0.05, test


def test_baselines_decode_from_raw_and_pca(encoded_model):
    _, neural, position, foreign, cut = encoded_model
    scores = baseline_scores(neural[:cut], neural[cut:],
                             {"position": (position[:cut], position[cut:]),
                              "foreign": (foreign[:cut], foreign[cut:])}, dimension=4)
    assert set(scores) == {(b, t, m) for b in ("raw", "pca") for t in ("position", "foreign")
                           for m in ("r2", "median_abs_error")}
    assert scores[("raw", "position", "r2")] > 0.8 and scores[("pca", "position", "r2")] > 0.5
    assert scores[("raw", "foreign", "r2")] < 0.3


def test_gof_nulls_keep_windows_and_positives_inside_segments(encoded_model, monkeypatch):
    """Every reference, positive and negative the sampler draws (for the real and the
    null label orders) has its whole model window inside one segment; without segments
    some windows straddle the seams."""
    model, neural, position, _, cut = encoded_model
    X, y = neural[cut:], (position[cut:, None],)
    segments = np.repeat([0, 1, 2], [250, 100, 250])  # seams at 250 and 350
    offset = model.solver_.model.get_offset()
    drawn = []
    make_loader = model.make_loader

    def spying_loader(*args, **kwargs):
        loader = make_loader(*args, **kwargs)
        get_indices = loader.get_indices

        def spy(*a, **k):
            index = get_indices(*a, **k)
            drawn.append(tuple(np.asarray(i.cpu()) for i in (index.reference, index.positive,
                                                             index.negative)))
            return index
        loader.get_indices = spy
        return loader

    monkeypatch.setattr(model, "make_loader", spying_loader)
    orders = null_orders("circular_shift", len(X), 3, min_shift=50, trials=segments, seed=1)

    def straddling() -> int:
        indices = np.concatenate([np.concatenate(batch) for batch in drawn])
        first, last = segments[indices - offset.left], segments[indices + offset.right - 1]
        return int(np.sum((first != segments[indices]) | (last != segments[indices])))

    real, null = gof_nulls(model, X, y, orders, num_batches=5, segments=segments)
    assert len(drawn) == 4 * 5 and np.isfinite(real) and np.isfinite(null).all()
    assert straddling() == 0
    drawn.clear()
    gof_nulls(model, X, y, orders, num_batches=5)
    assert straddling() > 0


def test_gof_nulls_reject_segments_of_the_wrong_length(encoded_model):
    model, neural, position, _, cut = encoded_model
    X = neural[cut:]
    orders = null_orders("circular_shift", len(X), 2, min_shift=50, seed=0)
    with pytest.raises(ValueError, match="segments has 10 samples"):
        gof_nulls(model, X, (position[cut:, None],), orders, segments=np.zeros(10, dtype=int))


def test_evaluation_nulls_take_min_shift_in_seconds(encoded_model):
    model, neural, position, _, cut = encoded_model
    args = (model, neural[:cut], neural[cut:], (position[cut:, None],),
            {"position": (position[:cut], position[cut:])})
    in_samples = evaluation_nulls(*args, num_nulls=9, min_shift=50, gof_batches=2)
    in_seconds = evaluation_nulls(*args, num_nulls=9, min_shift="1.25 s", sample_period=0.025,
                                  gof_batches=2)
    for a, b in zip(in_samples, in_seconds):
        np.testing.assert_array_equal(a.null, b.null)
    with pytest.raises(ValueError, match="no time base"):
        evaluation_nulls(*args, num_nulls=9, min_shift="1.25 s")
