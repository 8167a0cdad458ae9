"""Tests of ``cebra_pipe.decoders``."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.base
import torch
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score, train_test_split

import cebra_pipe as cebra
from cebra_pipe.decoders import KNNDecoder, L1LinearRegressor, LabelTypeError


def _class_embedding(n: int = 600, n_classes: int = 3, noise: float = 0.3, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) embedding of integer classes: one direction per class, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n)
    centroids = np.eye(4)[:n_classes]
    return centroids[labels] + noise * rng.normal(size=(n, 4)), labels


def _position_embedding(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) embedding of a position in [0, 1] on a half circle (angle is what cosine sees)."""
    rng = np.random.default_rng(seed)
    position = rng.uniform(size=n)
    angle = np.pi * position
    embedding = np.stack([np.cos(angle), np.sin(angle), 0.05 * rng.normal(size=n)], axis=1)
    return embedding, position


def _shuffled(labels: np.ndarray, seed: int = 1) -> np.ndarray:
    return labels[np.random.default_rng(seed).permutation(len(labels))]


# ---------------------------------------------------------------- KNNDecoder

def test_knn_classification_beats_chance():
    embedding, labels = _class_embedding()
    train, valid, y_train, y_valid = train_test_split(embedding, labels, test_size=0.3,
                                                      random_state=0)
    decoder = KNNDecoder().fit(train, y_train)
    assert decoder.is_classifier_
    score = decoder.score(valid, y_valid)
    chance = KNNDecoder().fit(train, _shuffled(y_train)).score(valid, y_valid)
    assert score > 0.9
    assert score > chance + 0.4
    prediction = decoder.predict(valid)
    assert prediction.shape == y_valid.shape
    assert np.issubdtype(prediction.dtype, np.integer)
    assert score == pytest.approx(np.mean(prediction == y_valid))


def test_knn_regression_beats_chance():
    embedding, position = _position_embedding()
    train, valid, y_train, y_valid = train_test_split(embedding, position, test_size=0.3,
                                                      random_state=0)
    decoder = KNNDecoder(n_neighbors=5).fit(train, y_train)
    assert not decoder.is_classifier_
    score = decoder.score(valid, y_valid)
    chance = KNNDecoder(n_neighbors=5).fit(train, _shuffled(y_train)).score(valid, y_valid)
    assert score > 0.95
    assert chance < 0.2
    assert decoder.predict(valid).shape == (len(valid),)


def test_knn_multi_column_regression():
    embedding, position = _position_embedding()
    labels = np.stack([position, 1.0 - position ** 2], axis=1)
    decoder = KNNDecoder().fit(embedding[:600], labels[:600])
    assert decoder.predict(embedding[600:]).shape == (200, 2)
    assert decoder.score(embedding[600:], labels[600:]) > 0.9


def test_knn_metric_is_used():
    # The query points the same way as (10, 1) but lies next to (1, 1): cosine distance
    # only sees the direction, euclidean distance sees the position.
    train = np.array([[10.0, 1.0], [1.0, 1.0]])
    labels = np.array([0, 1])
    query = np.array([[1.0, 0.1]])
    assert KNNDecoder(n_neighbors=1).fit(train, labels).predict(query)[0] == 0
    euclidean = KNNDecoder(n_neighbors=1, metric="euclidean").fit(train, labels)
    assert euclidean.predict(query)[0] == 1


def test_knn_accepts_tensors_and_column_class_labels():
    embedding, labels = _class_embedding(n=200)
    decoder = KNNDecoder().fit(torch.from_numpy(embedding), torch.from_numpy(labels)[:, None])
    assert decoder.is_classifier_
    assert decoder.score(torch.from_numpy(embedding), labels[:, None]) > 0.9


def test_knn_is_a_sklearn_estimator():
    decoder = KNNDecoder(n_neighbors=7, metric="euclidean")
    assert decoder.get_params() == {"n_neighbors": 7, "metric": "euclidean"}
    clone = sklearn.base.clone(decoder)
    assert clone.get_params() == decoder.get_params() and clone is not decoder
    embedding, labels = _class_embedding(n=300)
    scores = cross_val_score(KNNDecoder(), embedding, labels, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.8)


# ---------------------------------------------------------------- L1LinearRegressor

def test_l1_regression_decodes_linear_label():
    rng = np.random.default_rng(2)
    embedding = rng.normal(size=(500, 5))
    labels = embedding @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + 0.1 * rng.normal(size=500)
    decoder = L1LinearRegressor(alpha=0.01).fit(embedding[:400], labels[:400])
    assert decoder.score(embedding[400:], labels[400:]) > 0.95
    chance = L1LinearRegressor(alpha=0.01).fit(embedding[:400], _shuffled(labels[:400]))
    assert chance.score(embedding[400:], labels[400:]) < 0.1
    assert decoder.predict(embedding[400:]).shape == (100,)


def test_l1_alpha_shrinks_coefficients():
    rng = np.random.default_rng(3)
    embedding = rng.normal(size=(300, 4))
    labels = embedding[:, 0] + 0.1 * rng.normal(size=300)
    strong = L1LinearRegressor(alpha=10.0).fit(embedding, labels)
    # A penalty far above the signal zeroes every coefficient: a constant prediction.
    assert np.all(strong.estimator_.coef_ == 0)
    assert strong.score(embedding, labels) == pytest.approx(0.0, abs=1e-9)


def test_l1_multi_column_and_estimator_api():
    rng = np.random.default_rng(4)
    embedding = rng.normal(size=(300, 3))
    labels = np.stack([embedding[:, 0], -embedding[:, 1]], axis=1)
    decoder = L1LinearRegressor(alpha=0.001).fit(embedding, labels)
    assert decoder.predict(embedding).shape == (300, 2)
    assert decoder.score(embedding, labels) > 0.99
    assert sklearn.base.clone(decoder).get_params() == {"alpha": 0.001}


# ---------------------------------------------------------------- guide

def test_guide_decoding_block_cebra_time():
    """The guide's CEBRA-Time decoding example, with a synthetic embedding for the fit."""
    embedding, discrete_label = _class_embedding(n=500, seed=5)

    from sklearn.model_selection import train_test_split

    # 2. Split the embedding and label to decode into train/validation sets
    (
         train_embedding,
         valid_embedding,
         train_discrete_label,
         valid_discrete_label,
    ) = train_test_split(embedding,
                         discrete_label,
                         test_size=0.3)

    # 3. Train the decoder on the training set
    decoder = cebra.KNNDecoder()
    decoder.fit(train_embedding, train_discrete_label)

    # 4. Get the score on the validation set
    score = decoder.score(valid_embedding, valid_discrete_label)

    # 5. Get the discrete labels predictions
    prediction = decoder.predict(valid_embedding)

    assert prediction.shape == valid_discrete_label.shape
    assert score > 0.8


def test_guide_decoding_block_cebra_behavior():
    """The guide's CEBRA-Behavior decoding example; a fixed projection stands in for CEBRA."""
    rng = np.random.default_rng(6)
    discrete_label = rng.integers(0, 2, size=600)
    neural_data = (np.eye(2)[discrete_label] @ rng.normal(size=(2, 30))
                   + 0.5 * rng.normal(size=(600, 30)))
    projection = np.linalg.pinv(rng.normal(size=(3, 30)))

    from sklearn.model_selection import train_test_split

    # 1. Split your neural data and auxiliary variable
    (
        train_data,
        valid_data,
        train_discrete_label,
        valid_discrete_label,
    ) = train_test_split(neural_data,
                         discrete_label,
                         test_size=0.2)

    # 3. Get embedding for training and validation data
    train_embedding = train_data @ projection
    valid_embedding = valid_data @ projection

    # 4. Train the decoder on training embedding and labels
    decoder = cebra.KNNDecoder()
    decoder.fit(train_embedding, train_discrete_label)

    # 5. Compute the score on validation embedding and labels
    score = decoder.score(valid_embedding, valid_discrete_label)

    assert score > 0.75


# ---------------------------------------------------------------- bad input

@pytest.fixture(params=[KNNDecoder, L1LinearRegressor], ids=["knn", "l1"])
def decoder_class(request):
    return request.param


def test_mismatched_lengths(decoder_class):
    with pytest.raises(ValueError, match="mismatched lengths: 10 .* 9"):
        decoder_class().fit(np.zeros((10, 2)), np.zeros(9))


def test_nan_in_labels(decoder_class):
    labels = np.arange(10, dtype=float)
    labels[2] = np.nan
    with pytest.raises(ValueError, match="labels.*NaN"):
        decoder_class().fit(np.random.default_rng(0).normal(size=(10, 2)), labels)


def test_nan_in_embedding(decoder_class):
    embedding = np.random.default_rng(0).normal(size=(10, 2))
    embedding[4, 1] = np.nan
    with pytest.raises(ValueError, match="embedding.*NaN"):
        decoder_class().fit(embedding, np.arange(10, dtype=float))


def test_nan_in_embedding_at_predict(decoder_class):
    embedding = np.random.default_rng(0).normal(size=(10, 2))
    decoder = decoder_class().fit(embedding, np.arange(10, dtype=float))
    embedding[0, 0] = np.inf
    with pytest.raises(ValueError, match="embedding.*NaN or infinite"):
        decoder.predict(embedding)


def test_one_dimensional_embedding(decoder_class):
    with pytest.raises(ValueError, match=r"must be 2-D .*reshape"):
        decoder_class().fit(np.zeros(10), np.zeros(10))


def test_three_dimensional_labels(decoder_class):
    with pytest.raises(ValueError, match="labels.*must be 1-D"):
        decoder_class().fit(np.zeros((10, 2)), np.zeros((10, 1, 1)))


def test_non_numeric_labels(decoder_class):
    with pytest.raises(TypeError, match="numeric"):
        decoder_class().fit(np.zeros((3, 2)), np.array(["a", "b", "c"]))


def test_predict_before_fit(decoder_class):
    with pytest.raises(NotFittedError):
        decoder_class().predict(np.zeros((3, 2)))


def test_predict_with_wrong_dims(decoder_class):
    decoder = decoder_class().fit(np.random.default_rng(0).normal(size=(10, 2)),
                                  np.arange(10, dtype=float))
    with pytest.raises(ValueError, match="3 dims but the decoder was fitted on 2"):
        decoder.predict(np.zeros((4, 3)))


def test_score_with_mismatched_lengths(decoder_class):
    embedding = np.random.default_rng(0).normal(size=(10, 2))
    decoder = decoder_class().fit(embedding, np.arange(10, dtype=float))
    with pytest.raises(ValueError, match="mismatched lengths"):
        decoder.score(embedding, np.arange(9, dtype=float))


@pytest.mark.parametrize("n_neighbors", [0, -1, 2.5])
def test_knn_bad_n_neighbors(n_neighbors):
    with pytest.raises(ValueError, match="n_neighbors"):
        KNNDecoder(n_neighbors=n_neighbors).fit(np.ones((5, 2)), np.arange(5))


def test_knn_more_neighbors_than_samples():
    with pytest.raises(ValueError, match="larger than the number of training samples"):
        KNNDecoder(n_neighbors=6).fit(np.ones((5, 2)), np.arange(5))


def test_knn_multi_column_integer_labels():
    with pytest.raises(ValueError, match="2 columns"):
        KNNDecoder().fit(np.ones((5, 2)), np.zeros((5, 2), dtype=int))


@pytest.mark.parametrize("alpha", [-1.0, "strong"])
def test_l1_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        L1LinearRegressor(alpha=alpha).fit(np.ones((5, 2)), np.arange(5.0))


def test_iter_hyperparams_gives_constructor_keywords():
    grid = list(KNNDecoder.iter_hyperparams())
    assert grid[0] == {"n_neighbors": 1, "metric": "cosine"}
    assert len({g["n_neighbors"] for g in grid}) == len(grid)
    for params in grid + list(L1LinearRegressor.iter_hyperparams()):
        decoder = (KNNDecoder if "n_neighbors" in params else L1LinearRegressor)(**params)
        assert decoder.get_params().items() >= params.items()


@pytest.mark.parametrize("decoder", [KNNDecoder(), L1LinearRegressor()])
def test_text_labels_raise_label_type_error(decoder):
    embedding = np.zeros((6, 2))
    with pytest.raises(LabelTypeError, match="Invalid label type: y \\(labels\\) must be "
                                             "numeric, got dtype <U") as err:
        decoder.fit(embedding, np.array(["left", "right"] * 3))
    # A TypeError here, and the reference's NotImplementedError.
    assert isinstance(err.value, TypeError) and isinstance(err.value, NotImplementedError)
    with pytest.raises(ValueError, match="Invalid label shape: .*mismatched lengths"):
        decoder.fit(embedding, np.zeros(5))
