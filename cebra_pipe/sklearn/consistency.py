"""Consistency of embeddings up to a linear map (:func:`consistency_score`).

Between runs on the same data, sample by sample; or between datasets, aligned by
averaging each embedding in label bins shared by all of them. The reference's path
``cebra.sklearn.metrics.consistency_score`` is re-exported by
:mod:`cebra_pipe.sklearn.metrics`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import sklearn.linear_model
import sklearn.metrics

from cebra_pipe.arrays import check_embedding, label_column
from cebra_pipe.data.splits import block_split

__all__ = ["consistency_score"]


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
            f"Invalid embeddings: consistency needs at least 2 embeddings to compare, got "
            f"{len(items)}.")
    return [check_embedding(item, f"embeddings[{i}]") for i, item in enumerate(items)]


def _check_held_out(held_out: float | None) -> float:
    """Return the held-out fraction, 0.0 meaning fit and score on the same samples."""
    if held_out is None:
        return 0.0
    if isinstance(held_out, bool) or not isinstance(held_out, (int, float, np.floating)):
        raise TypeError(f"held_out must be a float in (0, 1) or None, got {held_out!r}.")
    if not 0.0 < float(held_out) < 1.0:
        raise ValueError(f"held_out must be in (0, 1) or None, got {held_out!r}.")
    return float(held_out)


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
            'Missing labels: between="datasets" needs labels (one 1-D label array per '
            "embedding) to align the embeddings on.")
    items = list(labels)
    if len(items) != len(arrays):
        raise ValueError(
            f"Invalid labels: {len(items)} label arrays for {len(arrays)} embeddings; pass "
            "one per embedding.")
    checked = []
    for i, (label, embedding) in enumerate(zip(items, arrays)):
        label = label_column(label, f"labels[{i}]", len(embedding), f"embeddings[{i}]",
                             counted="samples").astype(float)
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
        counts = np.bincount(bin_index, minlength=num_bins).astype(float)
        sums = np.zeros((num_bins, embedding.shape[1]))
        np.add.at(sums, bin_index, embedding)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            sums, counts = _fill_empty_bins(sums, counts, f"dataset {dataset_id!r}", edges)
        binned.append(sums / counts[:, None])
    return binned


#: How many bins to either side an empty label bin may borrow samples from.
MAX_BIN_REACH = 2


def _fill_empty_bins(sums: np.ndarray, counts: np.ndarray, what: str, edges: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Give each empty bin the samples of its nearest populated neighbours.

    Sparse labels leave a few bins empty by chance (500 samples in 100 bins: about one
    run in two). Like the reference, an empty bin takes the samples within 1, else 2,
    bins of it; unlike it, a warning names the dataset and the bins. A gap wider than
    that has nothing nearby to stand for it and is refused.

    Parameters
    ----------
    sums : (bins, dims) summed embedding per bin
    counts : (bins,) samples per bin
    """
    empty = counts == 0
    new_sums, new_counts = sums.copy(), counts.copy()
    todo = empty.copy()
    for reach in range(1, MAX_BIN_REACH + 1):
        width = 2 * reach + 1
        window_counts = np.convolve(counts, np.ones(width), mode="same")
        window_sums = np.stack([np.convolve(column, np.ones(width), mode="same")
                                for column in sums.T], axis=1)
        take = todo & (window_counts > 0)
        new_sums[take], new_counts[take] = window_sums[take], window_counts[take]
        todo &= ~take
    first = int(np.flatnonzero(empty)[0])
    where = (f"{what} has no samples in {int(empty.sum())} of {len(counts)} label bins "
             f"(first: bin {first}, labels {edges[first]:.4g} to {edges[first + 1]:.4g})")
    if todo.any():
        b = int(np.flatnonzero(todo)[0])
        raise ValueError(
            f"{where}, and none within {MAX_BIN_REACH} bins of bin {b} (labels "
            f"{edges[b]:.4g} to {edges[b + 1]:.4g}); use fewer bins "
            f"(num_discretization_bins={len(counts)}).")
    warnings.warn(f"{where}; each takes the mean of the samples within {MAX_BIN_REACH} bins "
                  "of it. Use fewer bins (num_discretization_bins) for bins of their own.",
                  stacklevel=5)
    return new_sums, new_counts


def _consistency_between_runs(arrays: list[np.ndarray], held_out: float
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise ValueError(
            'Invalid embeddings: between="runs" needs embeddings of equal length (runs on '
            f"the same data), got lengths {[len(a) for a in arrays]}; use "
            'between="datasets" with labels.')
    ids = np.arange(len(arrays))
    # Runs hold out the last part of time, as training splits do.
    test = np.zeros(len(arrays[0]), dtype=bool)
    test[block_split(len(arrays[0]), held_out)[1]] = True
    train = ~test
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
                f"Invalid dataset_ids: they must list one id per embedding ({len(arrays)}), "
                f"got {len(ids)}.")
        if len(set(ids.tolist())) != len(ids):
            repeated = sorted({i for i in ids.tolist() if ids.tolist().count(i) > 1}, key=str)
            raise ValueError(f"Invalid dataset_ids: they must be unique, got {ids.tolist()} "
                             f"({repeated} repeated); give each embedding its own id, e.g. "
                             f"'{repeated[0]}-2' for a second recording of {repeated[0]!r}.")
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
      datasets. A bin a dataset leaves empty takes that dataset's samples within 2 bins
      of it, with a warning; a wider gap is refused.

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

    Examples
    --------
    Two runs whose embeddings differ by a linear map are fully consistent (R^2 = 1;
    unrelated embeddings score about 0):

    >>> import numpy as np
    >>> from cebra_pipe.sklearn.metrics import consistency_score
    >>> rng = np.random.default_rng(0)
    >>> run_a = rng.normal(size=(500, 3))                  # (time, dims)
    >>> run_b = run_a @ rng.normal(size=(3, 3))            # the same, linearly mixed
    >>> scores, pairs, ids = consistency_score([run_a, run_b], between="runs")
    >>> scores.round(3).tolist(), pairs.tolist(), ids.tolist()
    ([1.0, 1.0], [[0, 1], [1, 0]], [0, 1])
    """
    if between is None:
        raise ValueError('Missing between: pass between="runs" (several fits on the same '
                         'data) or between="datasets" (aligned on labels).')
    if between not in ("runs", "datasets"):
        raise ValueError(f'Invalid between: must be "runs" or "datasets", got {between!r}.')
    arrays = _check_consistency_embeddings(embeddings)
    fraction = _check_held_out(held_out)
    if between == "runs":
        for name, value in (("dataset IDs (dataset_ids)", dataset_ids), ("labels", labels)):
            if value is not None:
                raise ValueError(
                    f'No {name} with between="runs": runs are compared sample by sample '
                    'and numbered 0..n-1; use between="datasets" to align on labels.')
        return _consistency_between_runs(arrays, fraction)
    return _consistency_between_datasets(arrays, labels, dataset_ids,
                                         num_discretization_bins, fraction)
