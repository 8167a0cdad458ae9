"""Evaluation nulls: a trained model's held-out scores against null label orders.

The model is never retrained. The held-out embedding is computed once; the kNN
decoder's held-out predictions are computed once; then every score is recomputed
against each null order of the held-out labels (circular shifts by default, see
:mod:`cebra_pipe.hypothesis.nulls`), vectorised over nulls. This is the place-cell
shift test applied to embeddings: if the neural data do not carry the labels, the
real alignment is no better than a shifted one.

Scores (``METRICS``; direction and unit in :data:`METRIC_INFO`)
------
* ``gof_bits``: goodness of fit of the model's own InfoNCE in bits (0 = chance),
  with positives and negatives drawn by the model's sampler from the (null) labels;
* ``r2``, ``median_abs_error``: kNN regression of each continuous target;
* ``accuracy``: kNN classification of each discrete target.

Baselines (:func:`baseline_scores`) decode the same targets with the same decoder
from the smoothed neural data and from its PCA with the embedding's dimension.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cebra_pipe.hypothesis.nulls import null_orders, to_samples
from cebra_pipe.hypothesis.stats import permutation_p_value

__all__ = ["METRIC_INFO", "NullTest", "decoder_predictions", "decoding_nulls", "gof_nulls",
           "evaluation_nulls", "baseline_scores", "smooth"]

# metric -> (higher is better, unit; "{unit}" is replaced by the target's unit)
METRIC_INFO: dict[str, tuple[bool, str]] = {
    "gof_bits": (True, "bits"),
    "r2": (True, "R^2"),
    "median_abs_error": (False, "{unit}"),
    "accuracy": (True, "fraction correct"),
}
# Null orders are gathered in blocks of about this many label values, to bound memory.
_BLOCK_VALUES = 20_000_000


@dataclass
class NullTest:
    """One score of one model against its null distribution.

    Attributes
    ----------
    metric : a key of :data:`METRIC_INFO`
    target : decoded label ("-" for goodness of fit)
    unit : unit of ``real`` and ``null``
    real : the score with the true label alignment
    null : (num_nulls,) scores under the null
    """

    metric: str
    target: str
    unit: str
    real: float
    null: np.ndarray = field(repr=False)

    @property
    def higher_is_better(self) -> bool:
        return METRIC_INFO[self.metric][0]

    @property
    def null_median(self) -> float:
        return float(np.median(self.null))

    @property
    def effect(self) -> float:
        """Real minus null median (negative is better for errors)."""
        return float(self.real - self.null_median)

    @property
    def p_value(self) -> float:
        return permutation_p_value(self.real, self.null, self.higher_is_better)

    def row(self) -> dict[str, Any]:
        """The test as one table row."""
        return {"target": self.target, "metric": self.metric, "unit": self.unit,
                "real": self.real, "null_median": self.null_median, "effect": self.effect,
                "p_value": self.p_value, "num_nulls": int(self.null.size)}


def _blocks(orders: np.ndarray, width: int):
    step = max(1, _BLOCK_VALUES // max(1, orders.shape[1] * width))
    for start in range(0, len(orders), step):
        yield orders[start:start + step]


def decoding_nulls(prediction: np.ndarray, truth: np.ndarray, orders: np.ndarray
                   ) -> dict[str, tuple[float, np.ndarray]]:
    """Decoding scores of fixed predictions against the truth in each null order.

    Parameters
    ----------
    prediction : (time,) or (time, d) decoder output on held-out data
    truth : same shape; int for classification (accuracy), float for regression
        (``r2``, uniform average over columns as scikit-learn, and
        ``median_abs_error``, Euclidean norm over columns)
    orders : (num_nulls, time) null label orders

    Returns
    -------
    metric -> (real score, (num_nulls,) null scores)
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if len(prediction) != len(truth) or orders.shape[1] != len(truth):
        raise ValueError(f"prediction ({len(prediction)}), truth ({len(truth)}) and null "
                         f"orders ({orders.shape[1]}) must have the same number of time steps.")
    identity = np.arange(len(truth))[None, :]
    if truth.dtype.kind in "iub":
        def accuracy(block: np.ndarray) -> np.ndarray:
            return np.mean(prediction.reshape(-1)[None, :] == truth.reshape(-1)[block], axis=1)

        null = np.concatenate([accuracy(b) for b in _blocks(orders, 1)])
        return {"accuracy": (float(accuracy(identity)[0]), null)}
    y = truth.reshape(len(truth), -1).astype(np.float64)
    p = prediction.reshape(y.shape).astype(np.float64)
    # The total sum of squares is the same for every order (a reordering of y).
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    total = np.where(total > 0, total, np.nan)

    def scores(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = p[None, :, :] - y[block]
        r2 = np.nanmean(1.0 - (diff ** 2).sum(axis=1) / total, axis=1)
        return r2, np.median(np.linalg.norm(diff, axis=2), axis=1)

    parts = [scores(b) for b in _blocks(orders, y.shape[1])]
    real_r2, real_mae = scores(identity)
    return {"r2": (float(real_r2[0]), np.concatenate([r for r, _ in parts])),
            "median_abs_error": (float(real_mae[0]), np.concatenate([m for _, m in parts]))}


def decoder_predictions(train_embedding: np.ndarray, valid_embedding: np.ndarray,
                        y_train: np.ndarray, neighbors: int = 25) -> np.ndarray:
    """Held-out predictions of a cosine kNN decoder fitted on the train embedding.

    Parameters
    ----------
    train_embedding : (train time, dims); valid_embedding : (valid time, dims)
    y_train : (train time,) int (classification) or (train time,)/(train time, d) float
    neighbors : k, capped at the number of train samples
    """
    from cebra_pipe.decoders import KNNDecoder

    k = max(1, min(int(neighbors), len(train_embedding)))
    decoder = KNNDecoder(n_neighbors=k, metric="cosine").fit(train_embedding, y_train)
    return np.asarray(decoder.predict(valid_embedding))


def gof_nulls(model: Any, X: np.ndarray, y: tuple[np.ndarray, ...], orders: np.ndarray, *,
              num_batches: int = 10, seed: int = 0, embedding: np.ndarray | None = None,
              segments: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Goodness of fit (bits) of a fitted single-session model with real and null labels.

    The embedding of ``X`` is computed once; for each label order the model's own
    sampler draws ``num_batches`` batches (same seed for every order) and the model's
    criterion scores the embedding rows they index. With ``segments`` no model window
    and no positive crosses a seam, as in ``goodness_of_fit_score(..., segments=)``.

    Parameters
    ----------
    model : a fitted single-session :class:`cebra_pipe.CEBRA` trained with labels
    X : (time, neurons) held-out neural data
    y : labels as for ``fit`` (``(continuous,)``, ``(discrete,)`` or both)
    orders : (num_nulls, time) null label orders
    embedding : ``model.transform(X, segments=segments)`` if already computed
    segments : (time,) segment ids of ``X`` (a seam wherever consecutive ids differ)

    Returns
    -------
    (real bits, (num_nulls,) null bits)
    """
    import torch

    from cebra_pipe.sklearn.inputs import check_neural, check_segments, split_labels
    from cebra_pipe.sklearn.metrics import infonce_to_goodness_of_fit

    if not hasattr(model, "solver_"):
        raise ValueError("model is not fitted; call fit first.")
    if model.num_sessions_ is not None:
        raise ValueError("gof_nulls takes a single-session model; evaluate each session of "
                         "a multi-session model with its own embedding.")
    if not y:
        raise ValueError("gof_nulls needs the labels the model was trained with; a "
                         "CEBRA-Time model has no label hypothesis to test.")
    if isinstance(num_batches, bool) or int(num_batches) < 1:
        raise ValueError(f"num_batches must be an integer >= 1, got {num_batches!r}.")
    neural = check_neural(X)
    segments = check_segments(segments, len(neural))
    if embedding is None:
        embedding = model.transform(neural, segments=segments)
    emb = torch.as_tensor(np.asarray(embedding, dtype=np.float32))
    criterion = model.solver_.criterion
    batch_size = None if model.batch_size is None else min(int(model.batch_size), len(neural))

    def score(order: np.ndarray) -> float:
        session = split_labels(neural, tuple(np.asarray(v)[order] for v in y))
        session.segments = segments
        loader = model.make_loader([session], int(num_batches), seed, batch_size=batch_size)
        total, negatives = 0.0, 0
        with torch.no_grad():
            for _ in range(int(num_batches)):
                index = loader.get_indices(batch_size)
                ref, pos, neg = (emb[i.cpu()] for i in (index.reference, index.positive,
                                                        index.negative))
                total += float(criterion.cpu()(ref, pos, neg)[0])
                negatives = len(index.negative)
        return float(infonce_to_goodness_of_fit(total / int(num_batches), batch_size=negatives,
                                                num_sessions=1))

    real = score(np.arange(len(neural)))
    return real, np.array([score(order) for order in orders])


def smooth(neural: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing in time (``sigma`` in samples; 0 returns a float copy).

    Parameters
    ----------
    neural : (time, neurons)
    """
    from scipy.ndimage import gaussian_filter1d

    neural = np.asarray(neural, dtype=np.float64)
    if sigma < 0:
        raise ValueError(f"smoothing sigma must be >= 0 samples, got {sigma}.")
    return gaussian_filter1d(neural, sigma, axis=0, mode="nearest") if sigma > 0 else neural.copy()


def baseline_scores(X_train: np.ndarray, X_valid: np.ndarray,
                    targets: Mapping[str, tuple[np.ndarray, np.ndarray]], dimension: int, *,
                    sigma: float = 2.0, neighbors: int = 25
                    ) -> dict[tuple[str, str, str], float]:
    """Held-out kNN decoding from the smoothed neural data and from its PCA.

    Each split is smoothed on its own (no information crosses the split); PCA is
    fitted on the train split with ``dimension`` components.

    Parameters
    ----------
    X_train, X_valid : (time, neurons)
    targets : name -> (train labels, valid labels)
    dimension : PCA components (the embedding's dimension)

    Returns
    -------
    (baseline "raw" or "pca", target, metric) -> score
    """
    from sklearn.decomposition import PCA

    train, valid = smooth(X_train, sigma), smooth(X_valid, sigma)
    components = max(1, min(int(dimension), train.shape[1], len(train)))
    pca = PCA(n_components=components, random_state=0).fit(train)
    spaces = {"raw": (train, valid), "pca": (pca.transform(train), pca.transform(valid))}
    out: dict[tuple[str, str, str], float] = {}
    for name, (space_train, space_valid) in spaces.items():
        for target, (y_train, y_valid) in targets.items():
            prediction = decoder_predictions(space_train, space_valid, y_train, neighbors)
            identity = np.arange(len(y_valid))[None, :]
            for metric, (real, _) in decoding_nulls(prediction, y_valid, identity).items():
                out[(name, target, metric)] = real
    return out


def evaluation_nulls(model: Any, X_train: np.ndarray, X_valid: np.ndarray,
                     y_valid: tuple[np.ndarray, ...],
                     targets: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                     num_nulls: int = 200, kind: str = "circular_shift",
                     min_shift: int | str = 50, sample_period: float | None = None,
                     trials: np.ndarray | None = None, segments: np.ndarray | None = None,
                     neighbors: int = 25, gof_batches: int = 10, seed: int = 0,
                     units: Mapping[str, str] | None = None,
                     embeddings: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> list[NullTest]:
    """Every held-out score of a fitted model against ``num_nulls`` null label orders.

    Parameters
    ----------
    model : fitted single-session :class:`cebra_pipe.CEBRA` trained with labels
    X_train, X_valid : (time, neurons) train and held-out neural data
    y_valid : held-out labels as for ``fit`` (for goodness of fit)
    targets : name -> (train values, valid values) to decode; float = regression
        (``r2``, ``median_abs_error``), int = classification (``accuracy``)
    kind, num_nulls, trials : see :func:`~cebra_pipe.hypothesis.nulls.null_orders`
        (``trials`` is the held-out samples' trial ids)
    min_shift : samples (int) or a duration such as ``"2 s"``, converted with
        ``sample_period`` (seconds per sample), see :func:`~cebra_pipe.hypothesis.to_samples`
    segments : (valid time,) segment ids of the held-out samples: goodness-of-fit
        windows and positives stay inside segments
    units : target -> unit of its values (for ``median_abs_error``)
    embeddings : (train, valid) embeddings if already computed

    Returns
    -------
    list of :class:`NullTest`, goodness of fit first. The same null orders are used for
    every score, so scores of one model are tested against the same shifts.
    """
    shift = to_samples(min_shift, sample_period, "min_shift")
    orders = null_orders(kind, len(X_valid), num_nulls, min_shift=shift, trials=trials,
                         seed=seed)
    if embeddings is None:
        embeddings = (model.transform(X_train), model.transform(X_valid, segments=segments))
    train_emb, valid_emb = embeddings
    real, null = gof_nulls(model, X_valid, y_valid, orders, num_batches=gof_batches, seed=seed,
                           embedding=valid_emb, segments=segments)
    tests = [NullTest("gof_bits", "-", "bits", real, null)]
    units = dict(units or {})
    for target, (y_train, y_target) in targets.items():
        prediction = decoder_predictions(train_emb, valid_emb, y_train, neighbors)
        for metric, (real, null) in decoding_nulls(prediction, y_target, orders).items():
            unit = METRIC_INFO[metric][1].format(unit=units.get(target, "label units"))
            tests.append(NullTest(metric, target, unit, real, null))
    return tests
