"""Tests of the InfoNCE and goodness-of-fit metrics of ``cebra_pipe.sklearn.metrics``.

(Consistency is tested in ``test_consistency.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from cebra_pipe import CEBRA
from cebra_pipe.sklearn.metrics import (
    goodness_of_fit_history,
    goodness_of_fit_score,
    infonce_loss,
    infonce_to_goodness_of_fit,
)

LOG2E = np.log2(np.e)
BATCH = 128


def _noise(n: int, neurons: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian neural data and an unrelated continuous label."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, neurons)).astype(np.float32),
            rng.normal(size=(n, 1)).astype(np.float32))


def _place_cells(n: int, neurons: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy place cells on a track the animal runs back and forth: position is a real latent.

    Returns neural ``(n, neurons)`` and position ``(n, 1)`` in [0, 1].
    """
    rng = np.random.default_rng(seed)
    position = 0.5 + 0.5 * np.sin(2 * np.pi * np.arange(n) / 300)
    centers = rng.uniform(0, 1, neurons)
    rates = np.exp(-(position[:, None] - centers) ** 2 / (2 * 0.1 ** 2))
    neural = rates + 0.2 * rng.normal(size=rates.shape)
    return neural.astype(np.float32), position[:, None].astype(np.float32)


def _cebra(**kwargs) -> CEBRA:
    params = dict(batch_size=BATCH, max_iterations=50, output_dimension=4, learning_rate=3e-3,
                  device="cpu", random_state=0)
    params.update(kwargs)
    return CEBRA(**params)


@pytest.fixture(scope="module")
def noise_model() -> CEBRA:
    """Trained on pure noise (random X, random labels)."""
    return _cebra(max_iterations=20).fit(*_noise(2000, 20, seed=0))


@pytest.fixture(scope="module")
def place_data() -> tuple[np.ndarray, np.ndarray]:
    return _place_cells(2000, 20, seed=1)


@pytest.fixture(scope="module")
def place_model(place_data) -> CEBRA:
    """Trained on the first 80% of the place-cell recording."""
    neural, position = place_data
    return _cebra().fit(neural[:1600], position[:1600])


@pytest.fixture(scope="module")
def sessions() -> dict:
    rng = np.random.default_rng(2)
    return {"X": [rng.normal(size=(500, 10)).astype(np.float32),
                  rng.normal(size=(400, 7)).astype(np.float32)],
            "y": [rng.uniform(size=(500, 2)).astype(np.float32),
                  rng.uniform(size=(400, 2)).astype(np.float32)]}


@pytest.fixture(scope="module")
def multi_model(sessions) -> CEBRA:
    return _cebra(batch_size=64, max_iterations=10).fit(sessions["X"], sessions["y"])


# --------------------------------------------------------------------------------------
# Goodness of fit: chance and signal
# --------------------------------------------------------------------------------------

def test_goodness_of_fit_of_noise_model_on_fresh_noise_is_zero(noise_model):
    neural, label = _noise(2000, 20, seed=10)
    score = goodness_of_fit_score(noise_model, neural, label, num_batches=40)
    assert abs(score) < 0.05
    # As a loss: InfoNCE sits at the chance level log(batch size).
    loss = infonce_loss(noise_model, neural, label, num_batches=40)
    assert abs(loss - np.log(BATCH)) < 0.05


@pytest.mark.parametrize("kind", ["time", "discrete"])
def test_goodness_of_fit_on_noise_other_label_kinds(kind):
    rng = np.random.default_rng(3)
    neural = rng.normal(size=(1500, 20)).astype(np.float32)
    labels = () if kind == "time" else (rng.integers(0, 5, 1500),)
    model = _cebra(max_iterations=20).fit(neural[:1200], *(y[:1200] for y in labels))
    score = goodness_of_fit_score(model, neural[1200:], *(y[1200:] for y in labels),
                                  num_batches=50)
    assert abs(score) < 0.05


def test_goodness_of_fit_of_latent_model_on_held_out_data(place_model, place_data, noise_model):
    neural, position = place_data
    held_out = goodness_of_fit_score(place_model, neural[1600:], position[1600:],
                                     num_batches=50)
    assert held_out > 0.3
    fresh_noise = goodness_of_fit_score(noise_model, *_noise(2000, 20, seed=11), num_batches=50)
    assert held_out > fresh_noise + 0.25
    # The positives follow the labels: with shuffled labels they are random samples
    # and the held-out fit falls to about chance.
    shuffled = np.random.default_rng(4).permutation(position[1600:])
    assert goodness_of_fit_score(place_model, neural[1600:], shuffled,
                                 num_batches=50) < held_out - 0.25


def test_goodness_of_fit_is_infonce_in_bits_above_chance(place_model, place_data):
    neural, position = place_data
    args = (place_model, neural[1600:], position[1600:])
    loss = infonce_loss(*args, num_batches=10, seed=5)
    score = goodness_of_fit_score(*args, num_batches=10, seed=5)
    assert score == pytest.approx((np.log(BATCH) - loss) * LOG2E, abs=1e-9)


def test_evaluation_does_not_change_the_model(place_model, place_data):
    neural, position = place_data
    before = place_model.transform(neural[:200])
    training = place_model.solver_.model.training
    infonce_loss(place_model, neural[1600:], position[1600:], num_batches=3)
    np.testing.assert_array_equal(place_model.transform(neural[:200]), before)
    assert place_model.solver_.model.training == training
    assert len(place_model.state_dict_["loss"]) == 50


# --------------------------------------------------------------------------------------
# infonce_loss: seeding, chance correction, sessions
# --------------------------------------------------------------------------------------

def test_infonce_loss_is_seeded(place_model, place_data):
    neural, position = place_data
    args = (place_model, neural[1600:], position[1600:])
    first = infonce_loss(*args, num_batches=5, seed=1)
    assert infonce_loss(*args, num_batches=5, seed=1) == first
    assert infonce_loss(*args, num_batches=5, seed=2) != first
    assert goodness_of_fit_score(*args, num_batches=5, seed=1) == \
        goodness_of_fit_score(*args, num_batches=5, seed=1)
    assert np.isfinite(first) and first > 0


def test_correct_by_batchsize_subtracts_log_batch(place_model, place_data):
    neural, position = place_data
    args = (place_model, neural[1600:], position[1600:])
    raw = infonce_loss(*args, num_batches=5)
    corrected = infonce_loss(*args, num_batches=5, correct_by_batchsize=True)
    assert corrected == pytest.approx(raw - np.log(BATCH), abs=1e-9)


def test_multi_session_list_form(multi_model, sessions):
    loss = infonce_loss(multi_model, sessions["X"], sessions["y"], num_batches=5)
    assert np.isfinite(loss)
    assert infonce_loss(multi_model, sessions["X"], sessions["y"], num_batches=5) == loss
    assert infonce_loss(multi_model, sessions["X"], sessions["y"], num_batches=5,
                        seed=9) != loss
    # Every reference meets the negatives of both sessions: chance is log(64 * 2).
    corrected = infonce_loss(multi_model, sessions["X"], sessions["y"], num_batches=5,
                             correct_by_batchsize=True)
    assert corrected == pytest.approx(loss - np.log(64 * 2), abs=1e-9)
    score = goodness_of_fit_score(multi_model, sessions["X"], sessions["y"], num_batches=5)
    assert score == pytest.approx((np.log(128) - loss) * LOG2E, abs=1e-9)


@pytest.mark.parametrize("session_id", [0, 1])
def test_multi_session_session_id_form(multi_model, sessions, session_id):
    X, y = sessions["X"][session_id], sessions["y"][session_id]
    loss = infonce_loss(multi_model, X, y, session_id=session_id, num_batches=5)
    assert np.isfinite(loss)
    assert infonce_loss(multi_model, X, y, session_id=session_id, num_batches=5) == loss
    assert infonce_loss(multi_model, X, y, session_id=session_id, num_batches=5,
                        seed=3) != loss
    # One session alone: single-session batches, chance log(batch_size).
    corrected = infonce_loss(multi_model, X, y, session_id=session_id, num_batches=5,
                             correct_by_batchsize=True)
    assert corrected == pytest.approx(loss - np.log(64), abs=1e-9)
    score = goodness_of_fit_score(multi_model, X, y, session_id=session_id, num_batches=5)
    assert score == pytest.approx((np.log(64) - loss) * LOG2E, abs=1e-9)


def test_session_id_selects_the_encoder(multi_model, sessions):
    """Session 0's data through session 0's encoder; same-shaped data through another
    encoder gives another value."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 10)).astype(np.float32)
    y = rng.uniform(size=(300, 2)).astype(np.float32)
    twin = _cebra(batch_size=64, max_iterations=3).fit([X, X], [y, y])
    assert infonce_loss(twin, X, y, session_id=0, num_batches=5) != \
        infonce_loss(twin, X, y, session_id=1, num_batches=5)


def test_full_batch_model_chance_is_number_of_references():
    neural, label = _noise(400, 10, seed=7)
    model = _cebra(batch_size=None, max_iterations=5).fit(neural, label)
    assert model.num_negatives_ == 399  # every reference with a partner one step later
    held = neural[:200], label[:200]
    loss = infonce_loss(model, *held, num_batches=2)
    corrected = infonce_loss(model, *held, num_batches=2, correct_by_batchsize=True)
    assert corrected == pytest.approx(loss - np.log(199), abs=1e-9)
    assert goodness_of_fit_score(model, *held, num_batches=2) == pytest.approx(
        (np.log(199) - loss) * LOG2E, abs=1e-9)


def test_hybrid_model_is_scored_on_behaviour(place_data):
    neural, position = place_data
    model = _cebra(hybrid=True, max_iterations=5).fit(neural[:1600], position[:1600])
    loss = infonce_loss(model, neural[1600:], position[1600:], num_batches=5)
    # One InfoNCE term (behaviour), not the sum of two: near log(batch) for a fresh model.
    assert abs(loss - np.log(BATCH)) < 1.0
    history = goodness_of_fit_history(model)
    np.testing.assert_allclose(
        history, (np.log(BATCH) - model.state_dict_["loss"].numpy() / 2) * LOG2E)


# --------------------------------------------------------------------------------------
# infonce_to_goodness_of_fit and goodness_of_fit_history
# --------------------------------------------------------------------------------------

def test_infonce_to_goodness_of_fit_formula():
    assert infonce_to_goodness_of_fit(2.0, batch_size=64, num_sessions=1) == pytest.approx(
        (np.log(64) - 2.0) / np.log(2))
    assert infonce_to_goodness_of_fit(np.log(512), batch_size=512,
                                      num_sessions=1) == pytest.approx(0.0)
    values = infonce_to_goodness_of_fit(np.array([1.0, 3.0]), batch_size=64, num_sessions=3)
    np.testing.assert_allclose(values, (np.log(64 * 3) - np.array([1.0, 3.0])) * LOG2E)


def test_infonce_to_goodness_of_fit_from_model(place_model, multi_model):
    assert infonce_to_goodness_of_fit(3.0, model=place_model) == pytest.approx(
        (np.log(BATCH) - 3.0) * LOG2E)
    assert multi_model.num_negatives_ == 128
    assert infonce_to_goodness_of_fit(3.0, model=multi_model) == pytest.approx(
        infonce_to_goodness_of_fit(3.0, batch_size=64, num_sessions=2))


def test_infonce_to_goodness_of_fit_bad_input(place_model, monkeypatch):
    with pytest.raises(ValueError, match="should not be provided together with model"):
        infonce_to_goodness_of_fit(1.0, model=place_model, batch_size=64)
    for kwargs in ({}, {"batch_size": 64}, {"num_sessions": 1}):
        with pytest.raises(ValueError, match="Pass model, or batch_size .* and num_sessions"):
            infonce_to_goodness_of_fit(1.0, **kwargs)
    for kwargs in ({"batch_size": 0, "num_sessions": 1}, {"batch_size": 4, "num_sessions": 0}):
        with pytest.raises(ValueError, match=">= 1"):
            infonce_to_goodness_of_fit(1.0, **kwargs)
    with pytest.raises(NotFittedError, match="Fit the CEBRA model first") as error:
        infonce_to_goodness_of_fit(1.0, model=CEBRA())
    assert isinstance(error.value, RuntimeError)  # as the reference raises
    monkeypatch.setattr(place_model, "num_negatives_", None)
    with pytest.raises(ValueError, match="does not record its negatives"):
        infonce_to_goodness_of_fit(1.0, model=place_model)


def test_goodness_of_fit_history(place_model, multi_model):
    history = goodness_of_fit_history(place_model)
    assert history.shape == (place_model.max_iterations,)
    loss = place_model.state_dict_["loss"].numpy()
    np.testing.assert_allclose(history, (np.log(BATCH) - loss) * LOG2E)
    # Trained on a real latent: the fit improves during training.
    assert history[-10:].mean() > history[:10].mean() + 0.2
    assert goodness_of_fit_history(multi_model).shape == (multi_model.max_iterations,)


def test_goodness_of_fit_history_after_partial_fit():
    neural, label = _noise(300, 5, seed=8)
    model = _cebra(batch_size=32, max_iterations=4)
    model.partial_fit(neural, label)
    model.partial_fit(neural, label)
    assert goodness_of_fit_history(model).shape == (8,)


def test_metrics_survive_save_and_load(place_model, place_data, tmp_path):
    neural, position = place_data
    place_model.save(tmp_path / "model.pt")
    loaded = CEBRA.load(tmp_path / "model.pt")
    args = (neural[1600:], position[1600:])
    assert infonce_loss(loaded, *args, num_batches=3) == pytest.approx(
        infonce_loss(place_model, *args, num_batches=3), abs=1e-6)
    np.testing.assert_allclose(goodness_of_fit_history(loaded),
                               goodness_of_fit_history(place_model))


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", [infonce_loss, goodness_of_fit_score])
def test_mismatched_lengths(metric, place_model, place_data):
    neural, position = place_data
    with pytest.raises(ValueError, match="same length"):
        metric(place_model, neural[1600:], position[1600:-1], num_batches=2)


@pytest.mark.parametrize("metric", [infonce_loss, goodness_of_fit_score])
def test_labels_with_nan(metric, place_model, place_data):
    neural, position = place_data
    labels = position[1600:].copy()
    labels[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metric(place_model, neural[1600:], labels, num_batches=2)


def test_neural_data_with_nan(place_model, place_data):
    neural, position = place_data
    bad = neural[1600:].copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        infonce_loss(place_model, bad, position[1600:], num_batches=2)


@pytest.mark.parametrize("metric", [infonce_loss, goodness_of_fit_score])
def test_multi_session_model_needs_session_id(metric, multi_model, sessions):
    with pytest.raises(ValueError, match="No session_id provided"):
        metric(multi_model, sessions["X"][0], sessions["y"][0], num_batches=2)


def test_multi_session_bad_session_id(multi_model, sessions):
    X, y = sessions["X"][0], sessions["y"][0]
    with pytest.raises(RuntimeError, match="Invalid session_id=2"):
        infonce_loss(multi_model, X, y, session_id=2, num_batches=2)
    with pytest.raises(ValueError, match="session 1 of the model expects 7"):
        infonce_loss(multi_model, X, y, session_id=1, num_batches=2)
    with pytest.raises(ValueError, match="Data invalid with session_id"):
        infonce_loss(multi_model, sessions["X"], sessions["y"], session_id=0, num_batches=2)


def test_multi_session_wrong_number_of_sessions(multi_model, sessions):
    with pytest.raises(ValueError, match="expects"):
        infonce_loss(multi_model, sessions["X"][:1], sessions["y"][:1], num_batches=2)


@pytest.mark.parametrize("labels", [(), "discrete", "1-D"])
def test_multi_session_one_session_needs_matching_labels(multi_model, sessions, labels):
    """Without this check the loader would silently fall back to time-contrastive
    sampling (or use the wrong label columns)."""
    X = sessions["X"][0]
    if labels == "discrete":
        labels = (np.zeros(len(X), dtype=int),)
    elif labels == "1-D":
        labels = (sessions["y"][0][:, :1],)
    with pytest.raises(ValueError, match="trained (with continuous|on 2-D continuous) labels"):
        infonce_loss(multi_model, X, *labels, session_id=0, num_batches=2)


def test_single_session_needs_matching_labels(place_model, place_data, noise_model):
    neural, position = place_data
    with pytest.raises(ValueError, match="trained with continuous labels, got time"):
        infonce_loss(place_model, neural[1600:], num_batches=2)
    with pytest.raises(ValueError, match="trained on 1-D continuous labels, got 2-D"):
        infonce_loss(place_model, neural[1600:], np.hstack([position, position])[1600:],
                     num_batches=2)


def test_label_errors_name_the_reference_wording(place_model, place_data, multi_model,
                                                 sessions):
    """An added or missing kind of labels is a wrong number of label arrays, a swapped kind
    invalid labels (the reference's words), checked before any shape."""
    neural, position = place_data
    discrete = np.zeros(len(neural), dtype=int)
    with pytest.raises(ValueError, match="Number of index .*invalid.*got mixed labels"):
        infonce_loss(place_model, neural, position[:-5], discrete, num_batches=2)
    with pytest.raises(ValueError, match="Labels invalid.*trained with continuous labels, "
                                         "got discrete"):
        infonce_loss(place_model, neural, discrete, num_batches=2)
    X, y = sessions["X"], sessions["y"]
    with pytest.raises(NotImplementedError, match="Labels invalid: X is one recording") as err:
        infonce_loss(multi_model, X[0], [y[0], y[0]], session_id=0, num_batches=2)
    assert isinstance(err.value, ValueError)
    with pytest.raises(NotImplementedError, match="Data invalid with session_id=0"):
        infonce_loss(multi_model, X, y, session_id=0, num_batches=2)


def test_single_session_model_given_sessions(place_model, place_data):
    neural, position = place_data
    with pytest.raises(ValueError, match="trained on a single session"):
        infonce_loss(place_model, [neural, neural], [position, position], num_batches=2)
    with pytest.raises(ValueError, match="Invalid session_id=1.*single session"):
        infonce_loss(place_model, neural, position, session_id=1, num_batches=2)
    # session 0 of a single-session model is the model itself (as in the reference)
    assert np.isfinite(infonce_loss(place_model, neural, position, session_id=0,
                                    num_batches=2))


def test_wrong_number_of_neurons(place_model, place_data):
    neural, position = place_data
    with pytest.raises(ValueError, match="X has 19 neurons but the model expects 20"):
        infonce_loss(place_model, neural[:, :19], position, num_batches=2)


@pytest.mark.parametrize("metric", [infonce_loss, goodness_of_fit_score])
def test_unfitted_model(metric, place_data):
    neural, position = place_data
    with pytest.raises(NotFittedError, match="not fitted"):
        metric(CEBRA(), neural, position, num_batches=2)


def test_unfitted_model_history():
    with pytest.raises(NotFittedError, match="not fitted"):
        goodness_of_fit_history(CEBRA())


@pytest.mark.parametrize("metric", [infonce_loss, goodness_of_fit_score])
@pytest.mark.parametrize("num_batches", [0, -1, 2.5, True])
def test_bad_num_batches(metric, place_model, place_data, num_batches):
    neural, position = place_data
    with pytest.raises(ValueError, match="num_batches"):
        metric(place_model, neural[1600:], position[1600:], num_batches=num_batches)
