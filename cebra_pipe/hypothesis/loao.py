"""Leave-one-animal-out decoding with multi-session models.

Does an animal's recording land in the space the *other* animals' recordings define?
For each animal of a cohort, a multi-session model is trained on the other animals'
sessions (train splits); the held-out animal's sessions are then added to that frozen
cohort with ``CEBRA.fit(..., adapt=True, session_id=<next index>)`` (only their new
input layers are trained, on their train split and labels, see
:mod:`cebra_pipe.sklearn.adapt`), and their held-out (valid) parts are embedded and
decoded with the same kNN decoder as everywhere else:

* ``real`` (leave-one-animal-out): the decoder fitted on the other animals' train
  embeddings and labels, so the score is high only when a label value means the same
  place in the space for the held-out animal as for the cohort;
* ``within``: the same embedding decoded by a decoder fitted on the held-out
  animal's own train part (what the animal supports on its own);
* the chance level and p-value: the leave-one-animal-out predictions scored against
  circular shifts of the held-out labels (:func:`~cebra_pipe.hypothesis.evaluation.
  decoding_nulls`), whose median is the chance level of that score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cebra_pipe.hypothesis.evaluation import (METRIC_INFO, NullTest, decoder_predictions,
                                              decoding_nulls)
from cebra_pipe.hypothesis.nulls import null_orders, to_samples

__all__ = ["TransferTest", "leave_one_animal_out"]


@dataclass
class TransferTest:
    """One decoding score of one held-out session.

    Attributes
    ----------
    session : index of the session in the lists given to :func:`leave_one_animal_out`
    animal : its animal (the one left out)
    test : the score with the decoder fitted on the other animals, against its null
    within : the score of the same embedding with a decoder fitted on the session's
        own train part
    """

    session: int
    animal: str
    test: NullTest
    within: float


def _check_lists(animals: Sequence[str], **lists: Sequence[Any]) -> int:
    count = len(animals)
    for name, values in lists.items():
        if values is not None and len(values) != count:
            raise ValueError(f"{name} has {len(values)} entries but animals names {count} "
                             "sessions; give one entry per session.")
    if len(set(animals)) < 2:
        raise ValueError(f"leave-one-animal-out needs sessions of at least two animals, got "
                         f"{sorted(set(animals))}.")
    return count


def _fit_args(indices: Sequence[int], X: Sequence[np.ndarray], y: Sequence[tuple],
              segments: Sequence[np.ndarray | None] | None) -> tuple[list, list, dict]:
    """``fit``'s X list, label lists (one per label array) and segments keyword."""
    arity = {len(y[i]) for i in indices}
    if len(arity) != 1 or not arity.pop():
        raise ValueError("every session needs the same number (>= 1) of label arrays: "
                         "adaptation aligns the held-out animal to the cohort by its labels.")
    labels = [[y[i][k] for i in indices] for k in range(len(y[indices[0]]))]
    kwargs = {} if segments is None else {"segments": [segments[i] for i in indices]}
    return [X[i] for i in indices], labels, kwargs


def _at(values: Sequence[Any] | None, i: int) -> Any:
    """Entry ``i`` of an optional per-session list (None when the list is None)."""
    return None if values is None else values[i]


def leave_one_animal_out(estimator: Any, animals: Sequence[str], X_train: Sequence[np.ndarray],
                         y_train: Sequence[tuple], X_valid: Sequence[np.ndarray],
                         targets: Sequence[Mapping[str, tuple[np.ndarray, np.ndarray]]], *,
                         segments_train: Sequence[np.ndarray | None] | None = None,
                         segments_valid: Sequence[np.ndarray | None] | None = None,
                         trials_valid: Sequence[np.ndarray | None] | None = None,
                         num_nulls: int = 200, kind: str = "circular_shift",
                         min_shift: int | str = 50, sample_periods: Sequence[float | None]
                         | None = None, neighbors: int = 25, seed: int = 0,
                         units: Mapping[str, str] | None = None) -> list[TransferTest]:
    """Leave-one-animal-out decoding scores of every session (see the module docstring).

    Parameters
    ----------
    estimator : an unfitted multi-session-capable :class:`cebra_pipe.CEBRA` with labels
        (``conditional`` ``time_delta`` or ``delta``, or discrete labels); cloned for
        each animal left out, so its ``random_state`` seeds every fold
    animals : (sessions,) the animal of each session
    X_train, X_valid : per session, (time, neurons) train and held-out neural data
    y_train : per session, the train labels as for ``fit`` (a tuple of arrays); the
        held-out animal's are used only to adapt its input layer
    targets : per session, target name -> (train values, valid values) to decode;
        float = regression (``r2``, ``median_abs_error``), int = ``accuracy``. Every
        session needs the same target names.
    segments_train, segments_valid : per session, (time,) segment ids or None
    trials_valid : per session, the held-out samples' trial ids for the nulls, or None
    num_nulls, kind, min_shift : the null of each score, see
        :func:`~cebra_pipe.hypothesis.evaluation.evaluation_nulls`
    sample_periods : per session, seconds per sample (for ``min_shift`` in seconds)
    neighbors : k of the cosine kNN decoder
    units : target -> unit of its values

    Returns
    -------
    list of :class:`TransferTest`, sessions in order, each target's metrics in order
    """
    from sklearn.base import clone

    count = _check_lists(animals, X_train=X_train, y_train=y_train, X_valid=X_valid,
                         targets=targets, segments_train=segments_train,
                         segments_valid=segments_valid, trials_valid=trials_valid,
                         sample_periods=sample_periods)
    names = list(targets[0])
    if not names or any(list(t) != names for t in targets):
        raise ValueError(f"every session needs the same, non-empty decoding targets; got "
                         f"{[list(t) for t in targets]}.")
    units = dict(units or {})
    out: list[TransferTest] = []
    for animal in dict.fromkeys(animals):
        held = [i for i in range(count) if animals[i] == animal]
        others = [i for i in range(count) if animals[i] != animal]
        model = clone(estimator)
        X, labels, kwargs = _fit_args(others, X_train, y_train, segments_train)
        model.fit(X, *labels, **kwargs)
        ids = list(range(len(others), len(others) + len(held)))
        X, labels, kwargs = _fit_args(held, X_train, y_train, segments_train)
        model.fit(X, *labels, adapt=True, session_id=ids, **kwargs)
        cohort_embedding = np.concatenate([
            model.transform(X_train[i], session_id=k, segments=_at(segments_train, i))
            for k, i in enumerate(others)])
        for session_id, i in zip(ids, held):
            own_train = model.transform(X_train[i], session_id=session_id,
                                        segments=_at(segments_train, i))
            valid = model.transform(X_valid[i], session_id=session_id,
                                    segments=_at(segments_valid, i))
            shift = to_samples(min_shift, _at(sample_periods, i), "min_shift")
            orders = null_orders(kind, len(valid), num_nulls, min_shift=shift,
                                 trials=_at(trials_valid, i), seed=seed)
            for name in names:
                truth = targets[i][name][1]
                pooled = np.concatenate([np.asarray(targets[j][name][0]) for j in others])
                across = decoder_predictions(cohort_embedding, valid, pooled, neighbors)
                alone = decoder_predictions(own_train, valid, targets[i][name][0], neighbors)
                identity = np.arange(len(truth))[None, :]
                within = decoding_nulls(alone, truth, identity)
                for metric, (real, null) in decoding_nulls(across, truth, orders).items():
                    unit = METRIC_INFO[metric][1].format(unit=units.get(name, "label units"))
                    out.append(TransferTest(i, animal, NullTest(metric, name, unit, real, null),
                                            float(within[metric][0])))
    return sorted(out, key=lambda t: t.session)
