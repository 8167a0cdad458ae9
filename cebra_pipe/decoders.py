"""Decoders from an embedding to a behavioural label, following the scikit-learn API.

Two estimators are provided:

* :class:`KNNDecoder`: k-nearest-neighbours; regression for float labels (one or
  several columns), classification for integer labels.
* :class:`L1LinearRegressor`: L1-regularised linear regression (Lasso).

Both take ``embedding : (time, dims)`` and ``labels : (time,)`` or ``(time, n_labels)``.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn.linear_model
import sklearn.metrics
import sklearn.neighbors
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from cebra_pipe.arrays import check_embedding, to_numpy

__all__ = ["Decoder", "KNNDecoder", "L1LinearRegressor", "LabelTypeError"]


class LabelTypeError(TypeError, NotImplementedError):
    """Labels that are not numbers (a TypeError, and the NotImplementedError the
    reference raises for them, so code catching either keeps working)."""


def _check_labels(labels: Any, n_samples: int, name: str = "labels") -> np.ndarray:
    """Validate labels against the number of embedding samples.

    Parameters
    ----------
    labels : (time,) or (time, n_labels)
    n_samples : expected length (``len(embedding)``).

    Returns
    -------
    (time,) or (time, n_labels) array with its dtype preserved.
    """
    array = to_numpy(labels)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (time,) or 2-D (time, n_labels), got shape {array.shape}."
        )
    if array.shape[0] != n_samples:
        raise ValueError(
            f"Invalid label shape: embedding and {name} have mismatched lengths: "
            f"{n_samples} samples in the "
            f"embedding vs {array.shape[0]} in {name}."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise LabelTypeError(f"Invalid label type: {name} must be numeric, got dtype "
                             f"{array.dtype}; encode text classes as integers first.")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contain NaN or infinite values.")
    return array


def _is_discrete(labels: np.ndarray) -> bool:
    """Integer or boolean labels are class labels; anything else is a regression target."""
    return np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool


class Decoder(BaseEstimator):
    """Base class of decoders: ``fit(X, y)``, ``predict(X)``, ``score(X, y)`` and a grid
    of hyperparameters to try (:meth:`iter_hyperparams`)."""

    #: Hyperparameter values :meth:`iter_hyperparams` combines (name -> values).
    hyperparams: dict[str, tuple] = {}

    @classmethod
    def iter_hyperparams(cls) -> Iterator[dict[str, Any]]:
        """Every combination of :attr:`hyperparams`, as keyword dicts for the decoder.

        Yields
        ------
        dict
            E.g. ``{"n_neighbors": 1, "metric": "cosine"}`` for :class:`KNNDecoder`.
        """
        names = list(cls.hyperparams)
        for values in itertools.product(*(cls.hyperparams[n] for n in names)):
            yield dict(zip(names, values))


class KNNDecoder(Decoder):
    """k-nearest-neighbours decoder from an embedding to labels.

    Float labels are decoded by regression (averaging the neighbours' labels,
    multi-column labels supported); integer labels by classification (majority vote).

    Parameters
    ----------
    n_neighbors : number of neighbours used for a prediction.
    metric : distance between embedding points; ``"cosine"`` suits CEBRA embeddings,
        which live on a hypersphere by default.

    Attributes
    ----------
    estimator_ : the fitted ``KNeighborsRegressor`` or ``KNeighborsClassifier``.
    is_classifier_ : whether the labels were treated as classes.
    n_features_in_ : embedding dimensionality seen in ``fit``.
    """

    # Neighbourhood sizes 1, 4, 9, ..., 49 with the cosine metric (as the reference).
    hyperparams = {"n_neighbors": tuple(int(k) ** 2 for k in range(1, 8)),
                   "metric": ("cosine",)}

    def __init__(self, n_neighbors: int = 3, metric: str = "cosine") -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> "KNNDecoder":
        """Fit the decoder.

        Parameters
        ----------
        X : (time, dims) embedding.
        y : (time,) or (time, n_labels) labels; integer -> classification, float -> regression.
        """
        embedding = check_embedding(X, "X (embedding)")
        labels = _check_labels(y, len(embedding), "y (labels)")
        if not isinstance(self.n_neighbors, (int, np.integer)) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive integer, got {self.n_neighbors!r}.")
        if self.n_neighbors > len(embedding):
            raise ValueError(
                f"n_neighbors={self.n_neighbors} is larger than the number of training "
                f"samples ({len(embedding)})."
            )
        self.is_classifier_ = _is_discrete(labels)
        if self.is_classifier_:
            labels = self._class_labels(labels)
            estimator = sklearn.neighbors.KNeighborsClassifier(
                n_neighbors=self.n_neighbors, metric=self.metric)
        else:
            estimator = sklearn.neighbors.KNeighborsRegressor(
                n_neighbors=self.n_neighbors, metric=self.metric)
        self.estimator_ = estimator.fit(embedding, labels)
        self.n_features_in_ = embedding.shape[1]
        return self

    @staticmethod
    def _class_labels(labels: np.ndarray) -> np.ndarray:
        """Flatten (time, 1) class labels; several integer columns are ambiguous."""
        if labels.ndim == 2:
            if labels.shape[1] != 1:
                raise ValueError(
                    f"integer labels with {labels.shape[1]} columns are not supported for "
                    "classification; decode one column at a time, or cast to float for "
                    "multi-column regression."
                )
            labels = labels[:, 0]
        return labels

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Predict labels.

        Parameters
        ----------
        X : (time, dims) embedding.

        Returns
        -------
        (time,) or (time, n_labels) predictions, shaped like the labels given to ``fit``.
        """
        check_is_fitted(self, "estimator_")
        embedding = self._check_predict_input(X)
        return self.estimator_.predict(embedding)

    def score(self, X: npt.ArrayLike, y: npt.ArrayLike) -> float:
        """Decoding performance: R^2 for regression, accuracy for classification.

        Parameters
        ----------
        X : (time, dims) embedding.
        y : (time,) or (time, n_labels) true labels.
        """
        check_is_fitted(self, "estimator_")
        embedding = self._check_predict_input(X)
        labels = _check_labels(y, len(embedding), "y (labels)")
        prediction = self.estimator_.predict(embedding)
        if self.is_classifier_:
            return float(sklearn.metrics.accuracy_score(self._class_labels(labels), prediction))
        return float(sklearn.metrics.r2_score(labels, prediction))

    def _check_predict_input(self, X: npt.ArrayLike) -> np.ndarray:
        embedding = check_embedding(X, "X (embedding)")
        if embedding.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X (embedding) has {embedding.shape[1]} dims but the decoder was fitted "
                f"on {self.n_features_in_}."
            )
        return embedding


class L1LinearRegressor(Decoder, RegressorMixin):
    """Linear decoder with L1 regularisation (Lasso).

    Parameters
    ----------
    alpha : L1 penalty strength; ``0`` would be ordinary least squares (use a small
        positive value instead, Lasso's solver is not meant for ``alpha=0``).

    Attributes
    ----------
    estimator_ : the fitted ``sklearn.linear_model.Lasso``.
    n_features_in_ : embedding dimensionality seen in ``fit``.
    """

    hyperparams = {"alpha": (0.001, 0.01, 0.1, 1.0, 10.0)}

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> "L1LinearRegressor":
        """Fit the decoder.

        Parameters
        ----------
        X : (time, dims) embedding.
        y : (time,) or (time, n_labels) continuous labels.
        """
        embedding = check_embedding(X, "X (embedding)")
        labels = _check_labels(y, len(embedding), "y (labels)").astype(float)
        if (isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real)
                or not self.alpha >= 0):
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}.")
        self.estimator_ = sklearn.linear_model.Lasso(alpha=self.alpha).fit(embedding, labels)
        self.n_features_in_ = embedding.shape[1]
        return self

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Predict labels.

        Parameters
        ----------
        X : (time, dims) embedding.

        Returns
        -------
        (time,) or (time, n_labels) predictions, shaped like the labels given to ``fit``.
        """
        check_is_fitted(self, "estimator_")
        embedding = check_embedding(X, "X (embedding)")
        if embedding.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X (embedding) has {embedding.shape[1]} dims but the decoder was fitted "
                f"on {self.n_features_in_}."
            )
        return self.estimator_.predict(embedding)

    def score(self, X: npt.ArrayLike, y: npt.ArrayLike) -> float:
        """R^2 of the predictions (averaged uniformly over label columns).

        Parameters
        ----------
        X : (time, dims) embedding.
        y : (time,) or (time, n_labels) true labels.
        """
        prediction = self.predict(X)
        labels = _check_labels(y, len(prediction), "y (labels)").astype(float)
        return float(sklearn.metrics.r2_score(labels, prediction))
