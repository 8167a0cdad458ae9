"""Metrics on CEBRA embeddings and models.

Sections
--------
* InfoNCE and goodness of fit: :func:`infonce_loss` evaluates a fitted model's own
  criterion on fresh, seeded batches of new data; :func:`goodness_of_fit_score`
  turns it into bits above chance.
* Consistency: :func:`consistency_score` measures how well embeddings agree up to a
  linear map, between runs on the same data or between datasets aligned on labels.

This module does not import the estimator (it only calls a fitted one), so it
stays cheap to import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import sklearn.linear_model
import sklearn.metrics

__all__ = ["consistency_score", "goodness_of_fit_history", "goodness_of_fit_score",
           "infonce_loss", "infonce_to_goodness_of_fit"]


# --------------------------------------------------------------------------------------
# InfoNCE and goodness of fit
# --------------------------------------------------------------------------------------
#
# Chance level. A reference is contrasted with the negatives of its batch only (the
# positive is not in the denominator), so an embedding that carries no information
# scores InfoNCE = log(number of negatives). For multi-session models every
# reference is contrasted with the negatives of *all* sessions (batch_size x
# sessions), and that product is the chance level used here, exactly as the
# batches are drawn; evaluating one session of such a model (session_id given)
# draws single-session batches, whose chance level is log(batch_size).


def _check_fitted(model: Any) -> None:
    if not hasattr(model, "solver_"):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"This {type(model).__name__} instance is not fitted yet; call "
                             "fit before computing metrics.")


def _check_labels_match(model: Any, sessions: list) -> None:
    """The evaluation labels must be of the kind (and width) the model was trained on;
    loaders would otherwise silently fall back to another sampling scheme."""
    for session in sessions:
        if session.label_kind != model.label_kind_:
            raise ValueError(f"The model was trained with {model.label_kind_} labels, got "
                             f"{session.label_kind} labels; pass labels of the same kind as "
                             "for fit.")
        dims = getattr(model, "label_dims_", None)
        if dims is not None and session.continuous is not None \
                and session.continuous.shape[1] != dims:
            raise ValueError(f"The model was trained on {dims}-D continuous labels, got "
                             f"{session.continuous.shape[1]}-D continuous labels.")


def _evaluation_loader(model: Any, X: Any, y: tuple, session_id: int | None,
                       num_batches: int, seed: int, segments: Any = None
                       ) -> tuple[Any, int | None]:
    """Loader of fresh batches of ``(X, y)`` and the session whose encoder scores them
    (``None``: the whole model)."""
    sessions, multi = model.check_input(X, y, segments)
    if model.num_sessions_ is None and multi:
        raise ValueError(f"X is a list of {len(sessions)} sessions but the model was trained "
                         "on a single session; pass one (time, neurons) array.")
    if model.num_sessions_ is not None and not multi:
        # one recording: session_id picks its session (a list needs none)
        session_id = model.check_session_id(session_id)
        encoder = model.solver_.encoder(session_id)
        expected = model.n_features_in_[int(session_id)]
        if sessions[0].neural.shape[1] != expected:
            raise ValueError(f"X has {sessions[0].neural.shape[1]} neurons but session "
                             f"{session_id} of the model expects {expected}.")
        _check_labels_match(model, sessions)
        return model.make_loader(sessions, num_batches, seed, encoder=encoder), session_id
    if model.num_sessions_ is None:
        model.check_session_id(session_id)
    elif session_id is not None:
        raise ValueError(f"session_id={session_id} does not apply here: it selects one "
                         "session of a multi-session model evaluated on one recording.")
    expected = list(model.n_features_in_) if multi else [model.n_features_in_]
    got = [session.neural.shape[1] for session in sessions]
    if got != expected:
        raise ValueError(f"X has {got if multi else got[0]} neurons but the model expects "
                         f"{expected if multi else expected[0]}.")
    model.check_compatible(sessions, multi)
    _check_labels_match(model, sessions)
    return model.make_loader(sessions, num_batches, seed), None


def _mean_infonce(model: Any, X: Any, y: tuple, session_id: int | None, num_batches: int,
                  seed: int, segments: Any = None) -> tuple[float, int]:
    """Mean criterion over ``num_batches`` batches, and negatives per reference."""
    if isinstance(num_batches, bool) or not isinstance(num_batches, (int, np.integer)) \
            or num_batches < 1:
        raise ValueError(f"num_batches must be an integer >= 1, got {num_batches!r}.")
    loader, session = _evaluation_loader(model, X, y, session_id, int(num_batches), seed,
                                         segments)
    negatives = []

    def counted():  # batches one at a time (a list of them could fill the memory)
        for batch in loader:
            negatives[:] = [_batch_negatives(batch)]
            yield batch

    # Hybrid models score their behaviour positives only, like behaviour models.
    losses = model.solver_.score_batches(counted(), session_id=session)
    return sum(losses) / len(losses), negatives[0]


def _batch_negatives(batch: Any) -> int:
    if hasattr(batch, "batches"):
        return sum(len(b.negative) for b in batch.batches)
    index = getattr(batch, "index", None)  # a full batch: counting must not cut windows
    return len(index.negative if index is not None else batch.negative)


def infonce_loss(cebra_model: Any, X: Any, *y: Any, session_id: int | None = None,
                 num_batches: int = 500, correct_by_batchsize: bool = False,
                 seed: int = 0, segments: Any = None) -> float:
    """The model's own InfoNCE on ``(X, y)``, averaged over fresh batches.

    Parameters
    ----------
    cebra_model
        A fitted :class:`cebra_pipe.CEBRA`.
    X : (time, neurons), or a list of such per session for multi-session models
        Neural data, e.g. a validation split.
    *y
        Labels as for ``fit``.
    session_id
        For a multi-session model evaluated on one recording: which session's
        encoder to use.
    num_batches
        Batches to average over (drawn with the model's batch size and sampling).
    correct_by_batchsize
        Subtract the chance level ``log(negatives)``, so 0 is chance and lower is
        better.
    seed
        Seeds the batch sampling; the same seed gives the same value.
    segments
        Segment ids as for ``fit``: no sampled window or positive crosses a seam.

    Returns
    -------
    float
        Mean InfoNCE (lower is better).
    """
    _check_fitted(cebra_model)
    loss, negatives = _mean_infonce(cebra_model, X, y, session_id, num_batches, seed, segments)
    return loss - float(np.log(negatives)) if correct_by_batchsize else loss


def goodness_of_fit_score(cebra_model: Any, X: Any, *y: Any, session_id: int | None = None,
                          num_batches: int = 500, seed: int = 0,
                          segments: Any = None) -> float:
    """Goodness of fit in bits: ``(log(negatives) - InfoNCE) * log2(e)``; 0 is chance.

    Parameters are those of :func:`infonce_loss`.
    """
    _check_fitted(cebra_model)
    loss, negatives = _mean_infonce(cebra_model, X, y, session_id, num_batches, seed, segments)
    return float(infonce_to_goodness_of_fit(loss, batch_size=negatives, num_sessions=1))


def infonce_to_goodness_of_fit(infonce: float | np.ndarray, model: Any = None,
                               batch_size: int | None = None,
                               num_sessions: int | None = None) -> float | np.ndarray:
    """Convert InfoNCE values to goodness of fit in bits.

    Parameters
    ----------
    infonce
        One value or an array (e.g. a loss history).
    model
        A fitted estimator: its negatives per step set the chance level.
    batch_size, num_sessions
        Without ``model``: chance is ``log(batch_size * num_sessions)``
        (multi-session batches share negatives across sessions).
    """
    if model is not None:
        if batch_size is not None or num_sessions is not None:
            raise ValueError("Pass either model or batch_size/num_sessions, not both.")
        _check_fitted(model)
        negatives = getattr(model, "num_negatives_", None)
        if negatives is None:
            raise ValueError("The model does not record its negatives per step; pass "
                             "batch_size (and num_sessions) instead.")
    else:
        if batch_size is None:
            raise ValueError("Pass model, or batch_size (negatives per session and step).")
        if int(batch_size) < 1 or (num_sessions is not None and int(num_sessions) < 1):
            raise ValueError(f"batch_size and num_sessions must be >= 1, got {batch_size}, "
                             f"{num_sessions}.")
        negatives = int(batch_size) * int(num_sessions or 1)
    values = np.asarray(infonce, dtype=np.float64)
    return (np.log(negatives) - values) * np.log2(np.e)


def goodness_of_fit_history(model: Any) -> np.ndarray:
    """Goodness of fit (bits) at every training step, from the loss history.

    Hybrid models sum a behaviour and a time loss; their history is the mean of
    the two goodness-of-fit values.
    """
    _check_fitted(model)
    history = np.asarray(model.state_dict_["loss"], dtype=np.float64)
    terms = 2 if getattr(model, "hybrid", False) else 1
    return infonce_to_goodness_of_fit(history / terms, model=model)


# --------------------------------------------------------------------------------------
# Consistency
# --------------------------------------------------------------------------------------

def _to_numpy(values: Any) -> np.ndarray:
    """Return ``values`` as a numpy array; torch tensors are detached and moved to CPU."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _check_consistency_embeddings(embeddings: Any) -> list[np.ndarray]:
    """Validate the embeddings to compare.

    Parameters
    ----------
    embeddings : sequence of n arrays, each (time_i, dims_i)

    Returns
    -------
    list of n float arrays (time_i, dims_i).
    """
    if isinstance(embeddings, np.ndarray) and embeddings.ndim == 2:
        raise ValueError(
            "embeddings must be a list of 2-D embeddings (one per run/dataset), got a single "
            "2-D array; wrap it in a list together with the embeddings to compare to.")
    try:
        items = list(embeddings)
    except TypeError:
        raise TypeError(
            f"embeddings must be a list of (time, dims) arrays, got {type(embeddings).__name__}."
        ) from None
    if len(items) < 2:
        raise ValueError(
            f"consistency needs at least 2 embeddings to compare, got {len(items)}.")
    arrays = []
    for i, item in enumerate(items):
        array = _to_numpy(item)
        if array.ndim != 2:
            raise ValueError(
                f"embeddings[{i}] must be 2-D (time, dims), got shape {array.shape}.")
        if not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"embeddings[{i}] must be numeric, got dtype {array.dtype}.")
        array = array.astype(float, copy=False)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"embeddings[{i}] contains NaN or infinite values.")
        arrays.append(array)
    return arrays


def _check_held_out(held_out: float | None) -> float:
    """Return the held-out fraction, 0.0 meaning fit and score on the same samples."""
    if held_out is None:
        return 0.0
    if isinstance(held_out, bool) or not isinstance(held_out, (int, float, np.floating)):
        raise TypeError(f"held_out must be a float in (0, 1) or None, got {held_out!r}.")
    if not 0.0 < float(held_out) < 1.0:
        raise ValueError(f"held_out must be in (0, 1) or None, got {held_out!r}.")
    return float(held_out)


def _time_split(n_samples: int, held_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Split time into a leading train block and a trailing test block.

    A contiguous split (rather than a random one) keeps temporally autocorrelated
    neighbours of test samples out of the training set.

    Returns
    -------
    train_mask, test_mask : (n_samples,) boolean
    """
    test = np.zeros(n_samples, dtype=bool)
    if held_out > 0:
        n_train = int(round(n_samples * (1.0 - held_out)))
        test[n_train:] = True
    return ~test, test


def _interleaved_split(n_bins: int, held_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out every ``1/held_out``-th bin (e.g. every 5th for 0.2).

    Bins are ordered along the label; holding out a contiguous block would test
    extrapolation to an unseen label range, while interleaving tests the map across the
    whole label range.

    Returns
    -------
    train_mask, test_mask : (n_bins,) boolean
    """
    index = np.arange(n_bins)
    # A bin is held out when the running count of held-out bins steps up at it.
    test = np.floor((index + 1) * held_out) > np.floor(index * held_out)
    return ~test, test


def _linear_r2(source: np.ndarray, target: np.ndarray, train: np.ndarray,
               test: np.ndarray) -> float:
    """R^2 of a linear map from ``source`` to ``target``.

    Parameters
    ----------
    source : (samples, dims_source)
    target : (samples, dims_target)
    train, test : (samples,) boolean masks; with no test samples, score on ``train``.

    Notes
    -----
    The R^2 is variance-weighted over target dims (fraction of the target's total
    variance explained), so nearly constant latents do not dominate the score.
    """
    if not test.any():
        test = train
    regression = sklearn.linear_model.LinearRegression().fit(source[train], target[train])
    prediction = regression.predict(source[test])
    return float(sklearn.metrics.r2_score(target[test], prediction,
                                          multioutput="variance_weighted"))


def _check_split_sizes(train: np.ndarray, test: np.ndarray, held_out: float, what: str) -> None:
    """R^2 needs at least 2 samples to score on and 2 to fit on."""
    if train.sum() < 2 or (held_out > 0 and test.sum() < 2):
        raise ValueError(
            f"held_out split leaves {int(train.sum())} {what} to fit and {int(test.sum())} to "
            f"score on; both need at least 2 (use more {what} or another held_out).")


def _pairwise_r2(arrays: list[np.ndarray], ids: np.ndarray, train: np.ndarray,
                 test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R^2 for every ordered pair (source i, target j), i != j.

    Returns
    -------
    scores : (n^2 - n,)
    pairs : (n^2 - n, 2) of ids, ``pairs[k] = (source id, target id)``
    """
    scores, pairs = [], []
    for i, source in enumerate(arrays):
        for j, target in enumerate(arrays):
            if i == j:
                continue
            scores.append(_linear_r2(source, target, train, test))
            pairs.append((ids[i], ids[j]))
    return np.asarray(scores, dtype=float), np.asarray(pairs)


def _check_labels_list(labels: Any, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Validate one 1-D label per dataset.

    Returns
    -------
    list of n float arrays (time_i,).
    """
    if labels is None:
        raise ValueError(
            'between="datasets" needs labels (one 1-D label array per embedding) to align '
            "the embeddings on.")
    items = list(labels)
    if len(items) != len(arrays):
        raise ValueError(
            f"labels has {len(items)} entries but there are {len(arrays)} embeddings.")
    checked = []
    for i, (label, embedding) in enumerate(zip(items, arrays)):
        label = _to_numpy(label)
        if label.ndim == 2 and label.shape[1] == 1:
            label = label[:, 0]
        if label.ndim != 1:
            raise ValueError(
                f"labels[{i}] must be 1-D (time,), got shape {label.shape}; pass one column "
                "of a multi-dimensional label, e.g. continuous_label[:, 0].")
        if len(label) != len(embedding):
            raise ValueError(
                f"labels[{i}] has {len(label)} samples but embeddings[{i}] has "
                f"{len(embedding)}.")
        if not np.issubdtype(label.dtype, np.number):
            raise TypeError(f"labels[{i}] must be numeric, got dtype {label.dtype}.")
        label = label.astype(float)
        if not np.all(np.isfinite(label)):
            raise ValueError(f"labels[{i}] contains NaN or infinite values.")
        checked.append(label)
    return checked


def _bin_embeddings(arrays: list[np.ndarray], labels: list[np.ndarray], ids: np.ndarray,
                    num_bins: int) -> list[np.ndarray]:
    """Average each embedding in label bins shared by all datasets.

    Returns
    -------
    list of n arrays (num_bins, dims_i), row b = mean embedding in label bin b.
    """
    low = min(label.min() for label in labels)
    high = max(label.max() for label in labels)
    if high == low:
        raise ValueError(
            f"all labels have the same value ({low}); they cannot be binned to align datasets.")
    edges = np.linspace(low, high, num_bins + 1)
    binned = []
    # tolist(): plain Python ids read better in error messages than numpy scalars.
    for dataset_id, embedding, label in zip(ids.tolist(), arrays, labels):
        # Interior edges only, so the maximum falls in the last bin instead of a new one.
        bin_index = np.digitize(label, edges[1:-1])
        counts = np.bincount(bin_index, minlength=num_bins)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            b = int(empty[0])
            raise ValueError(
                f"dataset {dataset_id!r} has no samples in label bin {b} "
                f"(labels {edges[b]:.4g} to {edges[b + 1]:.4g}; {empty.size} empty bins in total); "
                f"use fewer bins (num_discretization_bins={num_bins}).")
        sums = np.zeros((num_bins, embedding.shape[1]))
        np.add.at(sums, bin_index, embedding)
        binned.append(sums / counts[:, None])
    return binned


def _consistency_between_runs(arrays: list[np.ndarray], held_out: float
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise ValueError(
            'between="runs" needs embeddings of equal length (runs on the same data), got '
            f"lengths {[len(a) for a in arrays]}; use between=\"datasets\" with labels.")
    ids = np.arange(len(arrays))
    train, test = _time_split(len(arrays[0]), held_out)
    _check_split_sizes(train, test, held_out, "time samples")
    scores, pairs = _pairwise_r2(arrays, ids, train, test)
    return scores, pairs, ids


def _consistency_between_datasets(arrays: list[np.ndarray], labels: Any, dataset_ids: Any,
                                  num_bins: int, held_out: float
                                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if dataset_ids is None:
        ids = np.arange(len(arrays))
    else:
        ids = np.asarray(list(dataset_ids))
        if ids.ndim != 1 or len(ids) != len(arrays):
            raise ValueError(
                f"dataset_ids must list one id per embedding ({len(arrays)}), got {len(ids)}.")
        if len(set(ids.tolist())) != len(ids):
            raise ValueError(f"dataset_ids must be unique, got {ids.tolist()}.")
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise ValueError(
            f"num_discretization_bins must be an integer >= 2, got {num_bins!r}.")
    checked_labels = _check_labels_list(labels, arrays)
    binned = _bin_embeddings(arrays, checked_labels, ids, int(num_bins))
    train, test = _interleaved_split(num_bins, held_out)
    _check_split_sizes(train, test, held_out, "bins")
    scores, pairs = _pairwise_r2(binned, ids, train, test)
    return scores, pairs, ids


def consistency_score(
    embeddings: Sequence[Any],
    between: Literal["runs", "datasets"] | None = None,
    labels: Sequence[Any] | None = None,
    dataset_ids: Sequence[Any] | None = None,
    num_discretization_bins: int = 100,
    held_out: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consistency of embeddings up to a linear map.

    For every ordered pair (i, j), i != j, a linear regression maps embedding i onto
    embedding j and the score is its R^2 (variance-weighted over the dims of j).

    * ``between="runs"``: embeddings of the same samples (e.g. several fits on the
      same data); they must have equal lengths and are compared sample by sample.
    * ``between="datasets"``: embeddings of different datasets, aligned by averaging
      each one in ``num_discretization_bins`` label bins whose edges are shared by all
      datasets; every bin must be populated in every dataset.

    Parameters
    ----------
    embeddings : n arrays or tensors (time_i, dims_i), n >= 2
    between : ``"runs"`` or ``"datasets"``
    labels : n 1-D arrays (time_i,), required for ``"datasets"`` only
    dataset_ids : n ids for ``"datasets"`` (default ``0..n-1``); runs use their index
    num_discretization_bins : number of label bins for ``"datasets"``
    held_out : fraction in (0, 1) of samples to score on, the map being fitted on the
        rest; ``None`` fits and scores on all samples. Runs hold out the last part of
        time (a contiguous block); datasets hold out evenly interleaved label bins
        (every ``1/held_out``-th bin).

    Returns
    -------
    scores : (n^2 - n,) R^2 values
    pairs : (n^2 - n, 2) ``(source id, target id)`` of each score
    ids : (n,) run indices or dataset ids
    """
    if between not in ("runs", "datasets"):
        raise ValueError(f'between must be "runs" or "datasets", got {between!r}.')
    arrays = _check_consistency_embeddings(embeddings)
    fraction = _check_held_out(held_out)
    if between == "runs":
        if labels is not None or dataset_ids is not None:
            raise ValueError(
                'between="runs" compares aligned embeddings sample by sample and takes no '
                'labels or dataset_ids; use between="datasets" to align on labels.')
        return _consistency_between_runs(arrays, fraction)
    return _consistency_between_datasets(arrays, labels, dataset_ids,
                                         num_discretization_bins, fraction)
