"""Fit several seeds of one :class:`CEBRA` configuration together (a batched ensemble).

``fit_seeds(params, X, y, seeds=[0, 1, 2])`` returns one fitted estimator per seed.
Each is indistinguishable from ``CEBRA(**params, random_state=seed).fit(X, y)``: the
same initial weights and batches (every seed keeps its own sampler generator and
dropout stream), the same loss history and log, and it saves, loads, transforms and
continues training like any fitted estimator. The seeds train in lock-step through
:class:`cebra_pipe.solver.ensemble.EnsembleSolver`: on a GPU the ``vmap`` backend
runs all seeds as one batched network (equal to the solo fits to float tolerance);
on the CPU the ``loop`` backend gives bit-identical models.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cebra_pipe.sklearn.estimator import CEBRA
from cebra_pipe.solver.ensemble import EnsembleSolver

# Parameters that may differ between members: they do not change the architecture,
# the optimizer or the number of steps.
_PER_MEMBER = ("random_state", "verbose")


def fit_seeds(params: Mapping[str, Any], X, *y, seeds: Sequence[int], backend: str = "auto",
              checkpoint_dirs: Sequence[str | os.PathLike] | None = None,
              checkpoint_frequency: int | None = None, segments=None) -> list[CEBRA]:
    """Fit ``CEBRA(**params, random_state=seed)`` on ``X`` (and ``y``) for every seed.

    Parameters
    ----------
    params
        Keyword arguments of :class:`CEBRA`, without ``random_state``.
    X : (time, neurons) or list of such arrays (multi-session)
        Neural data, shared by all seeds.
    *y
        Labels, as for :meth:`CEBRA.fit`.
    seeds
        Distinct integer seeds, at least one.
    backend
        ``"auto"``, ``"vmap"`` or ``"loop"`` (see :mod:`cebra_pipe.solver.ensemble`).
    checkpoint_dirs, checkpoint_frequency
        One folder per seed; the training state is written there every that many
        steps and a later call with the same folders resumes from it.
    segments
        Segment ids, as for :meth:`CEBRA.fit`.

    Returns
    -------
    list of CEBRA
        Fitted estimators, in the order of ``seeds``.

    Examples
    --------
    Two seeds trained together equal the same seeds trained one by one:

    >>> import numpy as np
    >>> from cebra_pipe import CEBRA, fit_seeds
    >>> neural = np.random.default_rng(0).normal(size=(300, 12)).astype("float32")
    >>> params = {"model_architecture": "offset1-model", "batch_size": 64,
    ...           "max_iterations": 5, "output_dimension": 3, "device": "cpu"}
    >>> models = fit_seeds(params, neural, seeds=[0, 1])
    >>> [m.random_state for m in models]
    [0, 1]
    >>> alone = CEBRA(**params, random_state=1).fit(neural)
    >>> bool(np.allclose(models[1].transform(neural), alone.transform(neural)))
    True
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of CEBRA keyword arguments, got "
                        f"{type(params).__name__}.")
    if "random_state" in params:
        raise ValueError("params must not contain 'random_state': the seeds come from "
                         "the seeds argument.")
    seeds = _check_seeds(seeds)
    estimators = [CEBRA(**params, random_state=seed) for seed in seeds]
    data = (X, *y)  # one object: validated once for all seeds
    return fit_ensemble(estimators, [data] * len(seeds), backend=backend,
                        checkpoint_dirs=checkpoint_dirs,
                        checkpoint_frequency=checkpoint_frequency, segments=segments)


def fit_ensemble(estimators: Sequence[CEBRA], data: Sequence[tuple], *,
                 backend: str = "auto",
                 checkpoint_dirs: Sequence[str | os.PathLike] | None = None,
                 checkpoint_frequency: int | None = None, segments=None) -> list[CEBRA]:
    """Fit ``estimators[k]`` on ``data[k] = (X, *y)``, all in lock-step.

    The estimators must share every parameter except ``random_state`` and
    ``verbose``, and their data must give models of one architecture (same neuron
    counts); labels may differ (e.g. per-seed shuffled controls). Each estimator
    ends up as ``estimators[k].fit(*data[k], segments=segments)`` would leave it.

    Returns
    -------
    list of CEBRA
        ``estimators``, fitted.
    """
    estimators = list(estimators)
    _check_estimators(estimators)
    data = list(data)
    if len(data) != len(estimators):
        raise ValueError(f"Got {len(data)} data tuples for {len(estimators)} estimators; "
                         "give one (X, *y) tuple per estimator.")
    loaders = _build(estimators, data, segments)
    ensemble = EnsembleSolver([e.solver_ for e in estimators], backend=backend)
    ensemble.fit(loaders, checkpoint_dirs=checkpoint_dirs,
                 checkpoint_frequency=checkpoint_frequency,
                 resume=checkpoint_dirs is not None,
                 rng_seeds=[e.dropout_seed() for e in estimators])
    for estimator, entry in zip(estimators, data):
        # As fit does: remember the cohort new sessions are later adapted to.
        if estimator.num_sessions_ is not None and estimator.label_kind_ != "time":
            estimator.record_cohort(*entry, segments=segments)
    return estimators


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a list of integers, got {type(seeds).__name__}.")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=[0].")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seeds must be non-negative integers, got {seed!r}.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (equal seeds give equal models), got {seeds}.")
    return [int(seed) for seed in seeds]


def _check_estimators(estimators: list) -> None:
    if not estimators:
        raise ValueError("fit_ensemble needs at least one estimator, got an empty list.")
    for k, estimator in enumerate(estimators):
        if not isinstance(estimator, CEBRA):
            raise TypeError(f"estimators[{k}] is a {type(estimator).__name__}, not a CEBRA.")
        estimator.validate_params()
    shared = [_shared_params(e) for e in estimators]
    for k, params in enumerate(shared[1:], 1):
        differ = sorted(n for n in params if params[n] != shared[0][n])
        if differ:
            raise ValueError(f"estimators[{k}] differs from estimators[0] in {differ}; an "
                             f"ensemble shares every parameter except {list(_PER_MEMBER)}.")


def _shared_params(estimator: CEBRA) -> dict[str, Any]:
    return {k: v for k, v in estimator.get_params().items() if k not in _PER_MEMBER}


def _build(estimators: list[CEBRA], data: list[tuple], segments=None) -> list:
    """Validate each member's data, build its model and solver; its training loader."""
    prepared: dict[int, tuple] = {}
    loaders = []
    for estimator, entry in zip(estimators, data):
        if not isinstance(entry, tuple) or not entry:
            raise TypeError(f"Each data entry must be a tuple (X, *y), got "
                            f"{type(entry).__name__}.")
        if id(entry) not in prepared:  # fit_seeds passes one tuple for all seeds
            prepared[id(entry)] = estimator.check_input(entry[0], entry[1:], segments)
        loaders.append(estimator.start_fit(*prepared[id(entry)]))
    return loaders
