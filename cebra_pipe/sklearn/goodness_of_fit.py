"""InfoNCE and goodness of fit of a fitted CEBRA model on new data.

:func:`infonce_loss` evaluates a fitted model's own criterion on fresh, seeded
batches of new data; :func:`goodness_of_fit_score` turns it into bits above chance,
:func:`goodness_of_fit_history` does so for the training loss history.

This module does not import the estimator (it only calls a fitted one), so it
stays cheap to import. The reference's path ``cebra.sklearn.metrics`` is
:mod:`cebra_pipe.sklearn.metrics`, which re-exports these names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["goodness_of_fit_history", "goodness_of_fit_score", "infonce_loss",
           "infonce_to_goodness_of_fit"]


# Chance level. A reference is contrasted with the negatives of its batch only (the
# positive is not in the denominator), so an embedding that carries no information
# scores InfoNCE = log(number of negatives). For multi-session models every
# reference is contrasted with the negatives of *all* sessions (batch_size x
# sessions), and that product is the chance level used here, exactly as the
# batches are drawn; evaluating one session of such a model (session_id given)
# draws single-session batches, whose chance level is log(batch_size).


def _check_fitted(model: Any) -> None:
    if not hasattr(model, "solver_"):
        from cebra_pipe.sklearn.estimator import NotFittedModelError

        raise NotFittedModelError(f"This {type(model).__name__} instance is not fitted yet. "
                                  "Fit the CEBRA model first (call fit) before computing "
                                  "metrics.")


def _given_label_kind(y: tuple) -> str:
    """The kind of labels ``y`` (one array each) holds, routed as ``fit`` routes them."""
    from cebra_pipe.sklearn.inputs import LABEL_KINDS, is_discrete_label

    discrete = [is_discrete_label(_first(label)) for label in y]
    return LABEL_KINDS[(not all(discrete), any(discrete))]


def _kind_count(kind: str) -> int:
    """Label arrays a kind stands for once joined: several continuous arrays become one
    continuous label, so kinds (not arrays) are what a model can be asked for."""
    from cebra_pipe.sklearn.inputs import LABEL_KINDS

    return next(sum(key) for key, value in LABEL_KINDS.items() if value == kind)


def _per_session(label: Any) -> bool:
    """A list with one label array per session (not a plain list of label values)."""
    return isinstance(label, (list, tuple)) and len(label) > 0 and all(
        hasattr(item, "shape") and np.ndim(item) >= 1 for item in label)


def _first(label: Any) -> Any:
    """One session's labels of a per-session list (the dtype is the same in all)."""
    return label[0] if _per_session(label) else label


def _check_label_kind(model: Any, y: tuple) -> None:
    """The labels must be of the kinds the model was trained on, before any shape check
    (the reference checks the number of label arrays first, then their type)."""
    given = _given_label_kind(y)
    if given == model.label_kind_:
        return
    if _kind_count(given) != _kind_count(model.label_kind_):
        raise ValueError(f"Number of index (label) arrays invalid: the model was trained with "
                         f"{model.label_kind_} labels, got {given} labels ({len(y)} arrays); "
                         "pass labels of the same kinds as for fit.")
    raise ValueError(f"Labels invalid for this model: it was trained with {model.label_kind_} "
                     f"labels, got {given} labels; pass labels of the same kind as for fit.")


def _check_one_recording(model: Any, X: Any, y: tuple, session_id: int | None) -> None:
    """A per-session list of labels needs a list of sessions, and a list of sessions is
    scored with every session's encoder (``session_id`` selects one for one recording)."""
    from cebra_pipe.sklearn.estimator import UnsupportedInputError
    from cebra_pipe.sklearn.inputs import is_multisession

    if is_multisession(X):
        if model.num_sessions_ is None:
            raise UnsupportedInputError(
                f"Data invalid: X is a list of {len(X)} sessions but the model was trained "
                "on a single session; pass one (time, neurons) array.")
        if session_id is not None:
            raise UnsupportedInputError(
                f"Data invalid with session_id={session_id}: a list of {len(X)} sessions is "
                "scored with every session's encoder; pass X[session_id] (one recording) "
                "with session_id, or the list without it.")
    elif any(_per_session(label) for label in y):
        raise UnsupportedInputError(
            "Labels invalid: X is one recording but a label argument is a per-session list; "
            "pass that session's labels (one array) together with session_id.")


def _check_labels_match(model: Any, sessions: list) -> None:
    """The evaluation labels must be of the kind (and width) the model was trained on;
    loaders would otherwise silently fall back to another sampling scheme."""
    for session in sessions:
        if session.label_kind != model.label_kind_:
            raise ValueError(f"Labels invalid for this model: it was trained with "
                             f"{model.label_kind_} labels, got {session.label_kind} labels; "
                             "pass labels of the same kind as for fit.")
        dims = getattr(model, "label_dims_", None)
        if dims is not None and session.continuous is not None \
                and session.continuous.shape[1] != dims:
            raise ValueError(f"Labels invalid for this model: it was trained on {dims}-D "
                             f"continuous labels, got {session.continuous.shape[1]}-D "
                             "continuous labels.")


def _evaluation_loader(model: Any, X: Any, y: tuple, session_id: int | None,
                       num_batches: int, seed: int, segments: Any = None
                       ) -> tuple[Any, int | None]:
    """Loader of fresh batches of ``(X, y)`` and the session whose encoder scores them
    (``None``: the whole model)."""
    _check_one_recording(model, X, y, session_id)
    if model.num_sessions_ is not None and not isinstance(X, (list, tuple)):
        model.check_session_id(session_id)  # the session first, then its labels
    _check_label_kind(model, tuple(label for label in y if label is not None))
    sessions, multi = model.check_input(X, y, segments)
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

    Examples
    --------
    An untrained-looking model scores about the chance level ``log(negatives)``:

    >>> import numpy as np
    >>> from cebra_pipe import CEBRA
    >>> from cebra_pipe.sklearn.metrics import infonce_loss
    >>> rng = np.random.default_rng(0)
    >>> neural = rng.normal(size=(300, 12)).astype("float32")
    >>> position = rng.uniform(0, 1.6, size=(300, 1))
    >>> model = CEBRA(model_architecture="offset1-model", batch_size=64, max_iterations=5,
    ...               output_dimension=3, device="cpu", random_state=0).fit(neural, position)
    >>> loss = infonce_loss(model, neural, position, num_batches=10)   # nats
    >>> bool(abs(loss - np.log(64)) < 0.5)                             # chance: log(64)
    True
    >>> above_chance = infonce_loss(model, neural, position, num_batches=10,
    ...                             correct_by_batchsize=True)
    >>> bool(np.isclose(above_chance, loss - np.log(64)))
    True
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
        Without ``model``, both: chance is ``log(batch_size * num_sessions)``
        (multi-session batches share negatives across sessions).

    A model trained full-batch (``batch_size=None``) has the chance level of its
    negatives per step, ``log(samples)``; the reference refuses such models.
    """
    if model is not None:
        if batch_size is not None or num_sessions is not None:
            raise ValueError("batch_size and num_sessions should not be provided together "
                             "with model (its negatives per step set the chance level); "
                             "pass either model or batch_size/num_sessions, not both.")
        _check_fitted(model)
        negatives = getattr(model, "num_negatives_", None)
        if negatives is None:
            raise ValueError("The model does not record its negatives per step; pass "
                             "batch_size (and num_sessions) instead.")
    else:
        if batch_size is None or num_sessions is None:
            raise ValueError("Pass model, or batch_size (negatives per session and step) "
                             "and num_sessions (1 for a single-session model).")
        if int(batch_size) < 1 or int(num_sessions) < 1:
            raise ValueError(f"batch_size and num_sessions must be >= 1, got {batch_size}, "
                             f"{num_sessions}.")
        negatives = int(batch_size) * int(num_sessions)
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
