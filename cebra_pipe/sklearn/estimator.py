"""The scikit-learn estimator :class:`CEBRA`.

It turns arrays into datasets, picks the loader and solver for the training mode
(time, behaviour: continuous / discrete / mixed, hybrid, multi-session), trains,
and embeds new data. The model file (plain tensors and JSON strings, nothing
unpickled) is :mod:`cebra_pipe.sklearn.persistence`'s; adding sessions to a trained
model is :mod:`cebra_pipe.sklearn.adapt`'s.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from cebra_pipe import __version__, models
from cebra_pipe.data import multi_session, single_session
from cebra_pipe.data.datasets import DatasetCollection, TensorDataset
from cebra_pipe.data.datatypes import Offset
from cebra_pipe.models import criterions
from cebra_pipe.sklearn import adapt as adaptation
from cebra_pipe.sklearn import persistence
from cebra_pipe.sklearn.inputs import (SessionData, as_array, check_neural,
                                       check_segment_coverage, check_segments, check_session,
                                       check_sessions, flatten_trials, is_multisession,
                                       segment_bounds)
from cebra_pipe.solver import resolve_device
from cebra_pipe.solver import init as init_solver
from cebra_pipe.solver.regularizers import init as init_regularizer

_CONDITIONALS = {None: "time_delta", "time_delta": "time_delta", "time": "time",
                 "delta": "delta_normal", "delta_normal": "delta_normal"}
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
_DEFAULT_OPTIMIZER_KWARGS = (("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0),
                             ("amsgrad", False))


class SessionIdError(ValueError, RuntimeError):
    """``session_id`` does not select a session of the model.

    A ValueError like every bad argument here, and a RuntimeError like the reference's
    (so code written for ``cebra`` that catches either keeps working).
    """


class MissingLabelsError(ValueError, RuntimeError):
    """Multi-session training without labels under a label conditional (a ValueError,
    and the RuntimeError the reference raises for it)."""


class UnsupportedInputError(ValueError, NotImplementedError):
    """A combination of inputs cebra_pipe does not support (a ValueError, and a
    NotImplementedError as the reference raises for it)."""


class NotFittedModelError(NotFittedError, RuntimeError):
    """A metric asked of an unfitted model: scikit-learn's NotFittedError (a ValueError
    and an AttributeError), and the RuntimeError the reference's metrics raise."""


class CEBRA(TransformerMixin, BaseEstimator):
    """Contrastive embeddings of neural data, with or without auxiliary labels.

    Parameters
    ----------
    model_architecture
        A name from ``cebra_pipe.models.get_options()``.
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"cuda_if_available"``.
    criterion
        ``"infonce"``.
    distance
        ``"cosine"`` or ``"euclidean"`` similarity in the criterion.
    conditional
        Positive sampling for continuous labels: ``"time_delta"`` (default for
        labels), ``"delta"`` (Gaussian, needs ``delta``) or ``"time"``.
    temperature, temperature_mode, min_temperature
        InfoNCE temperature; ``"auto"`` learns it (never below ``min_temperature``).
    time_offsets
        Steps between reference and positive (time) or over which label changes
        are observed (``time_delta``). A tuple of one int, as the reference takes
        it, is that int; several offsets are refused (as by the reference).
    delta
        Standard deviation of the ``"delta"`` conditional.
    max_iterations, max_adapt_iterations
        Training steps for ``fit`` / ``partial_fit`` and for ``fit(adapt=True)``.
    batch_size
        Samples per step (per session for multi-session); ``None`` uses every
        sample each step (single-session time or continuous training only).
    learning_rate, optimizer, optimizer_kwargs
        Optimiser settings (``"adam"`` or ``"adamw"``).
    output_dimension, num_hidden_units
        Embedding dimension and hidden channels.
    verbose
        Show progress on stderr: a tqdm bar on a terminal, else (a job's log file) a
        line with step, loss, steps/s and ETA every 10 s or 10% of the steps.
    pad_before_transform
        Edge-pad recordings so ``transform`` returns one row per time step.
    hybrid
        Train on behaviour and time jointly (CEBRA-Hybrid).
    random_state
        Seeds the weights and every sampler; equal seeds give identical models on CPU.
    jacobian_regularization
        Off (``None``, the default), or the xCEBRA penalty on the encoder's input
        Jacobian that makes attribution maps identifiable
        (:mod:`cebra_pipe.solver.regularizers`): a weight (float), or a dict
        ``{"weight": w, "start": s, "ramp": r}``: off for ``s`` steps, then ramped
        linearly to ``w`` over ``r`` steps. A bare weight means ``start=0`` and
        ``ramp=max_iterations // 2``. Single-session training only.

    Examples
    --------
    A few steps on random data (real use trains thousands of steps on recordings):

    >>> import numpy as np
    >>> from cebra_pipe import CEBRA
    >>> rng = np.random.default_rng(0)
    >>> neural = rng.normal(size=(300, 12)).astype("float32")   # (time, neurons)
    >>> position = rng.uniform(0, 1.6, size=(300, 1))           # (time, 1) in m
    >>> model = CEBRA(model_architecture="offset10-model", batch_size=64,
    ...               max_iterations=5, output_dimension=3, device="cpu", random_state=0)
    >>> embedding = model.fit(neural, position).transform(neural)
    >>> embedding.shape                                          # (time, output_dimension)
    (300, 3)
    >>> len(model.state_dict_["loss"])                           # one loss per step
    5
    """

    def __init__(self, model_architecture: str = "offset1-model",
                 device: str = "cuda_if_available", criterion: str = "infonce",
                 distance: str = "cosine", conditional: str | None = None,
                 temperature: float = 1.0, temperature_mode: str = "constant",
                 min_temperature: float | None = 0.1, time_offsets: int = 1,
                 delta: float | None = None, max_iterations: int = 10000,
                 max_adapt_iterations: int = 500, batch_size: int | None = None,
                 learning_rate: float = 3e-4, optimizer: str = "adam",
                 output_dimension: int = 8, verbose: bool = False,
                 num_hidden_units: int = 32, pad_before_transform: bool = True,
                 hybrid: bool = False, optimizer_kwargs: tuple = _DEFAULT_OPTIMIZER_KWARGS,
                 random_state: int | None = None,
                 jacobian_regularization: float | dict | None = None):
        self.model_architecture = model_architecture
        self.device = device
        self.criterion = criterion
        self.distance = distance
        self.conditional = conditional
        self.temperature = temperature
        self.temperature_mode = temperature_mode
        self.min_temperature = min_temperature
        self.time_offsets = time_offsets
        self.delta = delta
        self.max_iterations = max_iterations
        self.max_adapt_iterations = max_adapt_iterations
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.output_dimension = output_dimension
        self.verbose = verbose
        self.num_hidden_units = num_hidden_units
        self.pad_before_transform = pad_before_transform
        self.hybrid = hybrid
        self.optimizer_kwargs = optimizer_kwargs
        self.random_state = random_state
        self.jacobian_regularization = jacobian_regularization

    @classmethod
    def supported_model_architectures(cls, pattern: str = "*") -> list[str]:
        """Registered ``model_architecture`` names matching the glob ``pattern``."""
        return models.get_options(pattern)

    def receptive_field(self) -> int:
        """Samples of input one embedding row sees with this ``model_architecture``
        (fitted or not; the architecture fixes it, the neuron count does not)."""
        self.validate_params()
        return len(self._make_model(num_neurons=1).get_offset())

    def resolved_time_offset(self) -> int:
        """The one time offset ``time_offsets`` names (an int or a tuple of one int)."""
        value = self.time_offsets
        if isinstance(value, (tuple, list)):
            if len(value) != 1:
                raise UnsupportedInputError(
                    f"time_offsets={value!r}: one time offset per model is supported (as in "
                    "the reference); pass one int, e.g. time_offsets="
                    f"{value[0] if len(value) else 10!r}, or fit one model per offset.")
            (value,) = value
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"time_offsets must be a positive integer (or a tuple of one), "
                             f"got {self.time_offsets!r}.")
        return int(value)

    def resolved_device(self) -> torch.device:
        """The torch device that ``device`` names on this machine (``"cuda_if_available"``
        resolved); a ValueError when it is not available here."""
        return resolve_device(self.device)

    # -- parameter validation (sklearn: in fit, not in __init__) ------------------------
    def validate_params(self) -> None:
        """Check every parameter; a ValueError/TypeError naming the first bad one."""
        def positive_int(name: str, allow_none: bool = False) -> None:
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer"
                                 f"{' or None' if allow_none else ''}, got {value!r}.")

        for name in ("max_iterations", "output_dimension", "num_hidden_units"):
            positive_int(name)
        self.resolved_time_offset()
        positive_int("batch_size", allow_none=True)
        if isinstance(self.max_adapt_iterations, bool) or not isinstance(
                self.max_adapt_iterations, (int, np.integer)) or self.max_adapt_iterations < 0:
            raise ValueError(f"max_adapt_iterations must be an integer >= 0, got "
                             f"{self.max_adapt_iterations!r}.")
        if not models.is_registered(self.model_architecture):
            models.get(self.model_architecture)  # raises, with close matches
        choices = {"criterion": ("infonce",), "distance": ("cosine", "euclidean"),
                   "temperature_mode": ("constant", "auto"), "optimizer": tuple(_OPTIMIZERS)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        if self.conditional not in _CONDITIONALS:
            raise ValueError(f"conditional must be None, 'time', 'time_delta' or 'delta', got "
                             f"{self.conditional!r}.")
        if _CONDITIONALS[self.conditional] == "delta_normal" and not (
                self.delta is not None and float(self.delta) > 0):
            raise ValueError(f"conditional='delta' needs delta > 0, got delta={self.delta!r}.")
        for name in ("temperature", "learning_rate", "delta", "min_temperature"):
            _check_finite_positive(name, getattr(self, name),
                                   allow_none=name in ("delta", "min_temperature"))
        if self.random_state is not None and (
                isinstance(self.random_state, bool)
                or not isinstance(self.random_state, (int, np.integer))
                or not 0 <= self.random_state < 2**32):
            raise ValueError(f"random_state must be None or an integer in [0, 2**32), got "
                             f"{self.random_state!r}.")
        try:
            dict(self.optimizer_kwargs)
        except (TypeError, ValueError):
            raise TypeError(f"optimizer_kwargs must be a mapping or (name, value) pairs, got "
                            f"{self.optimizer_kwargs!r}.") from None
        self._make_regularizer()  # raises on a bad jacobian_regularization

    # -- building blocks -----------------------------------------------------------------
    @contextlib.contextmanager
    def _seeded(self, stream: int):
        """Fix torch's global RNG inside the block when ``random_state`` is set."""
        if self.random_state is None:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed(stream))
            yield

    def _seed(self, stream: int) -> int | None:
        """Independent seeds per purpose (weights, sampler of the n-th fit call, ...)."""
        if self.random_state is None:
            return None
        seq = np.random.SeedSequence([int(self.random_state), int(stream)])
        return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(2))

    def _make_model(self, num_neurons: int) -> torch.nn.Module:
        model = models.init(self.model_architecture, num_neurons=num_neurons,
                            num_units=self.num_hidden_units, num_output=self.output_dimension)
        if isinstance(model, models.ClassifierModel):
            raise ValueError(f"model_architecture={self.model_architecture!r} is a classifier "
                             "(it outputs features and class scores); contrastive training "
                             "needs an encoder such as 'offset10-model'.")
        return model

    def _make_criterion(self) -> torch.nn.Module:
        # The registry's names: "infonce-<distance>[-learnable]".
        if self.temperature_mode == "auto":
            return criterions.init(f"infonce-{self.distance}-learnable",
                                   temperature=self.temperature,
                                   min_temperature=self.min_temperature)
        return criterions.init(f"infonce-{self.distance}", temperature=self.temperature)

    def _make_optimizer(self, parameters) -> torch.optim.Optimizer:
        return _OPTIMIZERS[self.optimizer](parameters, lr=self.learning_rate,
                                           **dict(self.optimizer_kwargs))

    def _make_regularizer(self):
        """The Jacobian regulariser of ``jacobian_regularization`` (``None`` when off)."""
        spec = self.jacobian_regularization
        if spec is None:
            return None
        if isinstance(spec, (int, float, np.number)) and not isinstance(spec, bool):
            spec = {"weight": float(spec), "start": 0, "ramp": int(self.max_iterations) // 2}
        if not isinstance(spec, dict) or "weight" not in spec \
                or set(spec) - {"weight", "start", "ramp"}:
            raise ValueError(f"jacobian_regularization must be None, a weight, or a dict with "
                             f"'weight' and optional 'start', 'ramp'; got {spec!r}.")
        return init_regularizer("jacobian", **spec)

    def _solver_name(self) -> str:
        if self.num_sessions_ is not None:
            return "multi-session"
        return "single-session-hybrid" if self.hybrid else "single-session"

    def _build(self, sessions: list[SessionData], multi: bool) -> None:
        """Fresh model, criterion and solver (optimizer built when training starts)."""
        self.device_ = str(self.resolved_device())
        self.num_sessions_ = len(sessions) if multi else None
        self.label_kind_ = sessions[0].label_kind
        self.label_dims_ = (None if sessions[0].continuous is None
                            else int(sessions[0].continuous.shape[1]))
        if self.hybrid and (multi or sessions[0].continuous is None):
            raise ValueError("hybrid=True needs single-session training with continuous labels.")
        if multi and self.jacobian_regularization is not None:
            raise ValueError("jacobian_regularization is only implemented for single-session "
                             "training.")
        with self._seeded(0):
            if multi:
                model = torch.nn.ModuleList([self._make_model(s.neural.shape[1])
                                             for s in sessions])
            else:
                model = self._make_model(sessions[0].neural.shape[1])
        criterion = self._make_criterion()
        # Built on the first training step: a model loaded to embed never needs one.
        self.solver_ = init_solver(self._solver_name(), model=model, criterion=criterion,
                                   optimizer=self._make_optimizer, tqdm_on=bool(self.verbose),
                                   regularizer=self._make_regularizer())
        self.solver_.to(self.device_)
        self.n_features_in_ = ([s.neural.shape[1] for s in sessions] if multi
                               else sessions[0].neural.shape[1])
        self.offset_ = (model[0] if multi else model).get_offset()
        self._fit_calls = 0

    @property
    def num_sessions(self) -> int | None:
        """Sessions of a fitted multi-session model, None for single-session (as in
        the reference; same as ``num_sessions_``)."""
        check_is_fitted(self, "solver_")
        return self.num_sessions_

    @property
    def n_features_(self) -> int | list[int]:
        """Input features (neurons) per session, as in the reference (``n_features_in_``)."""
        check_is_fitted(self, "solver_")
        return self.n_features_in_

    @property
    def model_(self) -> torch.nn.Module:
        check_is_fitted(self, "solver_")
        return self.solver_.model

    @property
    def state_dict_(self) -> dict:
        """The solver's state, plus the reference's ``version`` and ``decode`` keys.

        ``decode`` is the history of decoding scores taken during training: cebra_pipe
        takes none (its held-out goodness of fit is under ``valid``), so it is empty.
        """
        check_is_fitted(self, "solver_")
        return {**self.solver_.state_dict(), "version": __version__, "decode": []}

    def make_dataset(self, session: SessionData) -> TensorDataset:
        """A dataset on the model's device for one validated recording."""
        return TensorDataset(session.neural, continuous=session.continuous,
                             discrete=session.discrete, segments=session.segments,
                             device=self.device_)

    def make_loader(self, sessions: list[SessionData], num_steps: int, seed: int | None,
                    batch_size: int | None = None, encoder: torch.nn.Module | None = None,
                    encoders: list[torch.nn.Module] | None = None):
        """The loader matching the training mode, for ``sessions`` (one if single).

        ``encoder`` builds a single-session loader for one session's encoder of a
        multi-session model (used to evaluate that session alone); ``encoders`` (one
        per session) replaces the model's encoders of a multi-session loader (used by
        ``fit(adapt=True)``).
        """
        batch_size = self.batch_size if batch_size is None else batch_size
        conditional = _CONDITIONALS[self.conditional]
        offset = self.resolved_time_offset()
        if self.num_sessions_ is not None and encoder is None:
            collection = DatasetCollection(*[self.make_dataset(s) for s in sessions])
            collection.configure_for(list(self.solver_.model) if encoders is None
                                     else encoders)
            if self.label_kind_ == "discrete":
                return multi_session.DiscreteMultiSessionDataLoader(
                    collection, num_steps, batch_size, time_offset=offset, seed=seed)
            return multi_session.ContinuousMultiSessionDataLoader(
                collection, num_steps, batch_size, conditional=conditional,
                time_offset=offset, delta=self.delta, seed=seed)
        dataset = self.make_dataset(sessions[0])
        dataset.configure_for(self.solver_.model if encoder is None else encoder)
        kind = self.label_kind_ if conditional != "time" else "time"
        if self.hybrid and encoder is None:
            return single_session.HybridDataLoader(dataset, num_steps, batch_size,
                                                   conditional=conditional, time_offset=offset,
                                                   delta=self.delta, seed=seed)
        if kind == "discrete":
            return single_session.DiscreteDataLoader(dataset, num_steps, batch_size, seed=seed)
        if kind == "mixed":
            return single_session.MixedDataLoader(dataset, num_steps, batch_size,
                                                  time_offset=offset, seed=seed)
        return single_session.ContinuousDataLoader(
            dataset, num_steps, batch_size, conditional=conditional if kind != "time" else "time",
            time_offset=offset, delta=self.delta, seed=seed)

    def check_input(self, X, y: tuple, segments=None) -> tuple[list[SessionData], bool]:
        """Validate ``X``, labels ``y`` and ``segments`` as ``fit`` takes them.

        Returns
        -------
        sessions : one :class:`SessionData` per recording
        multi : whether ``X`` is a list of sessions (multi-session training)
        """
        y = tuple(label for label in y if label is not None)  # fit(X, None): no labels
        multi = is_multisession(X)
        if multi:
            return check_sessions(X, y, segments), True
        if isinstance(X, (list, tuple)) and any(np.ndim(x) >= 2 for x in X):
            raise ValueError("X looks like a list of sessions, but not every entry is a "
                             "2-D (time, neurons) array.")
        return [check_session(X, y, segments)], False

    def _check_multisession_labels(self, sessions: list[SessionData], multi: bool) -> None:
        """Label-free multi-session training only when asked for (``conditional='time'``).

        Sessions are aligned by their labels; without labels nothing ties one session's
        embedding to another's, so the default (like the reference) refuses instead of
        silently training unaligned sessions.
        """
        if multi and sessions[0].label_kind == "time" and self.conditional != "time":
            raise MissingLabelsError(
                f"No labels given for multi-session training (conditional="
                f"{self.conditional!r}): sessions are aligned through their labels. Pass "
                "one label array per session, or conditional='time' to train "
                "time-contrastive within each session with negatives shared across "
                "sessions (cebra_pipe only).")

    def _check_segments_fit(self, sessions: list[SessionData]) -> None:
        """Warn about / refuse segments too short for the model's receptive field."""
        for session in sessions:
            check_segment_coverage(session.segments, len(self.offset_), session.segments_name)

    def _check_batch_size(self, sessions: list[SessionData]) -> None:
        if self.batch_size is None:
            return
        shortest = min(len(s.neural) for s in sessions)
        if self.batch_size > shortest:
            warnings.warn(f"batch_size={self.batch_size} is larger than the data ({shortest} "
                          "samples): samples repeat within a batch. Use a smaller batch_size "
                          "or more data.", UserWarning, stacklevel=3)

    def check_compatible(self, sessions: list[SessionData], multi: bool) -> None:
        """``sessions`` (from :meth:`check_input`) must fit the fitted model: as many
        sessions, the same neuron counts and the same kind of labels."""
        if multi != (self.num_sessions_ is not None):
            raise ValueError(f"Got {'multi' if multi else 'single'}-session data for a "
                             f"{'multi' if self.num_sessions_ else 'single'}-session model.")
        expected = self.n_features_in_ if multi else [self.n_features_in_]
        got = [s.neural.shape[1] for s in sessions]
        if got != list(np.atleast_1d(expected)):
            raise ValueError(f"X has {got if multi else got[0]} features, but CEBRA is expecting "
                             f"{self.n_features_in_} features as input (neurons).")
        if sessions[0].label_kind != self.label_kind_:
            raise ValueError(f"The model was trained with {self.label_kind_} labels, got "
                             f"{sessions[0].label_kind} labels.")

    # -- training ------------------------------------------------------------------------
    def fit(self, X, *y, segments=None, adapt: bool = False, callback=None,
            callback_frequency: int | None = None,
            checkpoint_dir: str | os.PathLike | None = None,
            checkpoint_frequency: int | None = None,
            session_id: int | list[int] | None = None) -> "CEBRA":
        """Train a new model on ``X`` (and labels ``y``).

        Parameters
        ----------
        X : (time, neurons), (trials, time, neurons), or a list of those (multi-session)
            Neural data. Trial-structured input is trained as concatenated trials,
            one segment per trial.
        *y : (time,) int or (time,) / (time, dims) float, or lists per session
            Discrete and/or continuous labels; ``(trials, time[, dims])`` with 3-D ``X``.
        segments : (time,) int, or a list of those (or None) per session
            Segment ids, e.g. the trial of each sample: a seam lies between
            consecutive samples whose ids differ, and no window of the model and
            no positive sample crosses one. Samples of segments shorter than the
            model's receptive field are not used (with a warning).
        adapt
            Keep the trained model, replace its input layer for ``X``'s neuron
            count and train only that layer for ``max_adapt_iterations`` steps. On
            a multi-session model this adds ``X`` (one recording, or a list) as
            new session(s) ``session_id`` to the frozen cohort, aligned by labels
            (required); see :mod:`cebra_pipe.sklearn.adapt`.
        session_id : int or list of int
            With ``adapt=True`` on a multi-session model: the index of each new
            recording, ``num_sessions_`` (the next free one, then on) to add it or an
            existing index to re-adapt that session.
        callback, callback_frequency
            ``callback(step, solver)`` every ``callback_frequency`` steps.
        checkpoint_dir, checkpoint_frequency
            Write the training state every that many steps; a later call with the
            same directory resumes from the newest checkpoint.
        """
        self.validate_params()
        if adapt:
            return self._adapt(X, *y, segments=segments, session_id=session_id,
                               callback=callback, callback_frequency=callback_frequency)
        sessions, multi = self.check_input(X, y, segments)
        self._check_multisession_labels(sessions, multi)
        self._check_batch_size(sessions)
        self._build(sessions, multi)
        self._check_segments_fit(sessions)
        self._train(sessions, self.max_iterations, callback, callback_frequency,
                    checkpoint_dir, checkpoint_frequency)
        return self._remember_cohort(sessions)

    def partial_fit(self, X, *y, segments=None, callback=None,
                    callback_frequency: int | None = None) -> "CEBRA":
        """Continue training the current model on the data given now.

        The first call initialises the model; later calls keep its parameters and
        optimiser state and train ``max_iterations`` steps on the new ``X`` / ``y``
        (same neuron count and kind of labels). ``segments`` as in :meth:`fit`.
        """
        self.validate_params()
        sessions, multi = self.check_input(X, y, segments)
        self._check_batch_size(sessions)
        if not hasattr(self, "solver_"):
            self._check_multisession_labels(sessions, multi)
            self._build(sessions, multi)
        else:
            self.check_compatible(sessions, multi)
        self._check_segments_fit(sessions)
        self._train(sessions, self.max_iterations, callback, callback_frequency)
        return self._remember_cohort(sessions)

    def _train(self, sessions: list[SessionData], num_steps: int, callback,
               callback_frequency, checkpoint_dir=None, checkpoint_frequency=None) -> "CEBRA":
        loader = self._next_loader(sessions, num_steps)
        with self._seeded(self._dropout_stream()):  # dropout masks
            self.solver_.fit(loader, callback=callback, callback_frequency=callback_frequency,
                             checkpoint_dir=checkpoint_dir,
                             checkpoint_frequency=checkpoint_frequency,
                             resume=checkpoint_dir is not None)
        return self

    def start_fit(self, sessions: list[SessionData], multi: bool):
        """A fresh model and solver for ``sessions`` (from :meth:`check_input`) and the
        seeded loader of their ``max_iterations`` training steps: ``fit`` before it
        trains (``fit_ensemble`` trains several estimators' loaders together)."""
        self._check_batch_size(sessions)
        self._build(sessions, multi)
        self._check_segments_fit(sessions)
        return self._next_loader(sessions, self.max_iterations)

    def dropout_seed(self) -> int | None:
        """The seed of the current training call's dropout masks (``None`` without
        ``random_state``)."""
        return self._seed(self._dropout_stream())

    def _next_loader(self, sessions: list[SessionData], num_steps: int):
        """The seeded loader of the next training call (shared with ``fit_seeds``)."""
        self._fit_calls = getattr(self, "_fit_calls", 0) + 1
        loader = self.make_loader(sessions, num_steps, self._seed(self._fit_calls))
        self.num_negatives_ = _negatives_per_step(loader)
        return loader

    def _dropout_stream(self) -> int:
        """The ``_seeded`` stream of the current training call's dropout masks."""
        return 1000 + self._fit_calls

    def _adapt(self, X, *y, segments=None, session_id=None, callback=None,
               callback_frequency=None) -> "CEBRA":
        check_is_fitted(self, "solver_", msg="adapt=True needs a fitted model: call fit first.")
        sessions, multi = self.check_input(X, y, segments)
        self._check_segments_fit(sessions)
        if self.num_sessions_ is not None:
            return self._adapt_cohort(sessions, session_id, callback, callback_frequency)
        if multi:
            raise UnsupportedInputError("adapt=True on a single-session model takes one "
                                        "recording, not a list of sessions (multisession adapt "
                                        "is for multi-session models): adapt to each new "
                                        "recording separately.")
        self.check_session_id(session_id)
        with self._seeded(2000 + getattr(self, "_fit_calls", 0)):
            model, trainable = adaptation.adapted_encoder(
                self.solver_.model, self._make_model, sessions[0].neural.shape[1])
        with _only_trainable(model, self.solver_.criterion, trainable):
            self.solver_ = init_solver(self._solver_name(), model=model,
                                       criterion=self.solver_.criterion,
                                       optimizer=self._make_optimizer(trainable),
                                       tqdm_on=bool(self.verbose))
            self.solver_.to(self.device_)
            self.label_kind_ = sessions[0].label_kind
            self.label_dims_ = (None if sessions[0].continuous is None
                                else int(sessions[0].continuous.shape[1]))
            self.n_features_in_ = sessions[0].neural.shape[1]
            self._train(sessions, self.max_adapt_iterations, callback, callback_frequency)
        # Later partial_fit calls train the whole (adapted) model again.
        self.solver_.optimizer = self._make_optimizer(list(model.parameters())
                                                      + list(self.solver_.criterion.parameters()))
        return self

    def _adapt_cohort(self, sessions: list[SessionData], session_id, callback,
                      callback_frequency) -> "CEBRA":
        """Add ``sessions`` to the frozen multi-session cohort (see :mod:`.adapt`)."""
        ids = adaptation.check_adapt_ids(session_id, len(sessions), self.num_sessions_)
        adaptation.check_adapt_labels(sessions, self.label_kind_, self.label_dims_)
        anchors = getattr(self, "cohort_anchors_", None)
        if anchors is None:
            raise adaptation.AdaptError(
                "This multi-session model has no record of its cohort (the embeddings and "
                "labels new sessions are aligned to): call model.record_cohort(X_list, "
                "y_list) with the cohort's training data first.")
        kept = [k for k in range(anchors.num_sessions) if k not in ids]
        if anchors.discrete[0] is not None:
            adaptation.check_adapt_labels(sessions, self.label_kind_, self.label_dims_,
                                          classes=np.unique(anchors.discrete[0]))
        if not kept:
            raise adaptation.AdaptError("fit(adapt=True) would re-adapt every cohort session; "
                                        "keep at least one to align to.")
        template = self.solver_.model[adaptation.TEMPLATE_SESSION]
        self._fit_calls = getattr(self, "_fit_calls", 0) + 1
        with self._seeded(2000 + self._fit_calls):
            built = [adaptation.adapted_encoder(template, self._make_model, s.neural.shape[1])
                     for s in sessions]
        encoders = [encoder for encoder, _ in built]
        trainable = [p for _, parameters in built for p in parameters]
        anchor_encoders = [adaptation.AnchorEncoder() for _ in kept]
        everyone = [anchors.session(k) for k in kept] + list(sessions)
        loader = self.make_loader(everyone, self.max_adapt_iterations,
                                  self._seed(self._fit_calls),
                                  encoders=anchor_encoders + encoders)
        criterion = self.solver_.criterion
        solver = init_solver("multi-session",
                             model=torch.nn.ModuleList(anchor_encoders + encoders),
                             criterion=criterion,
                             optimizer=self._make_optimizer(trainable),
                             tqdm_on=bool(self.verbose))
        solver.to(self.device_)
        with _only_trainable(solver.model, criterion, trainable):
            with self._seeded(self._dropout_stream()):
                solver.fit(loader, callback=callback, callback_frequency=callback_frequency)
        self._grow(ids, encoders, sessions)
        self.adapt_history_ = list(solver.history)
        return self

    def _grow(self, ids: list[int], encoders: list[torch.nn.Module],
              sessions: list[SessionData]) -> None:
        """Put the adapted ``encoders`` at session indices ``ids`` of the model."""
        model = self.solver_.model
        features = list(self.n_features_in_)
        for index, encoder, session in zip(ids, encoders, sessions):
            if index < len(model):
                model[index] = encoder
                features[index] = session.neural.shape[1]
            else:
                model.append(encoder)
                features.append(session.neural.shape[1])
        self.num_sessions_ = len(model)
        self.n_features_in_ = features
        anchors = self.cohort_anchors_
        for index, session in zip(ids, sessions):
            if index < anchors.num_sessions:  # a re-adapted cohort session: new anchor
                anchors.replace(index, self.transform(session.neural, session_id=index,
                                                      segments=session.segments), session)
        # Later partial_fit calls train the whole (grown) model again.
        self.solver_.optimizer = self._make_optimizer(
            list(model.parameters()) + list(self.solver_.criterion.parameters()))

    def record_cohort(self, X, *y, segments=None) -> "CEBRA":
        """Remember each session's embedding of ``X`` with its labels ``y``: the frozen
        cohort that ``fit(adapt=True)`` aligns new sessions to.

        ``fit`` and ``partial_fit`` of a multi-session model record their training
        data themselves; call this for a model fitted otherwise (e.g. loaded from an
        older file). Arguments as for a multi-session :meth:`fit`, one entry per
        session of the model.
        """
        check_is_fitted(self, "solver_")
        if self.num_sessions_ is None:
            raise ValueError("record_cohort is for multi-session models; this model was "
                             "trained on a single session.")
        sessions, multi = self.check_input(X, y, segments)
        self.check_compatible(sessions, multi)
        adaptation.check_adapt_labels(sessions, self.label_kind_, self.label_dims_)
        self.cohort_anchors_ = None
        return self._remember_cohort(sessions)

    def _remember_cohort(self, sessions: list[SessionData]) -> "CEBRA":
        """Record the cohort anchors after multi-session training with labels."""
        if self.num_sessions_ is None or self.label_kind_ == "time":
            return self
        embeddings = [self.transform(s.neural, session_id=i, segments=s.segments)
                      for i, s in enumerate(sessions)]
        self.cohort_anchors_ = adaptation.CohortAnchors.from_sessions(embeddings, sessions)
        return self

    # -- inference -----------------------------------------------------------------------
    def check_session_id(self, session_id: int | None) -> int | None:
        """The session that ``session_id`` selects: ``None`` for a single-session model
        (which accepts ``session_id`` None or 0, as the reference does).

        Raises :class:`SessionIdError` for a missing or out-of-range id and TypeError
        for a non-integer one.
        """
        check_is_fitted(self, "solver_")
        if session_id is not None and (isinstance(session_id, bool) or not isinstance(
                session_id, (int, np.integer))):
            raise TypeError(f"session_id must be an integer session index, got "
                            f"{session_id!r}.")
        sessions = self.num_sessions_
        if sessions is None:
            if session_id not in (None, 0):
                raise SessionIdError(f"Invalid session_id={session_id}: the model was trained "
                                     "on a single session; leave session_id out (or pass 0).")
            return None
        if session_id is None:
            raise SessionIdError(f"No session_id provided: the model was trained on {sessions} "
                                 f"sessions; pass session_id (0..{sessions - 1}).")
        if not 0 <= int(session_id) < sessions:
            raise SessionIdError(f"Invalid session_id={session_id}: the model was trained on "
                                 f"{sessions} sessions (0..{sessions - 1}).")
        return int(session_id)

    def transform(self, X, batch_size: int | None = None, session_id: int | None = None,
                  segments=None) -> np.ndarray:
        """Embed ``X (time, neurons)`` -> ``(time, output_dimension)``.

        Parameters
        ----------
        X : (time, neurons) or (trials, time, neurons)
            Neural data; trials give ``(trials, time, output_dimension)``, each trial
            embedded on its own.
        batch_size
            Time steps per forward pass (bounds memory; same result).
        session_id
            For multi-session models, whose encoder to use (0..num_sessions-1).
        segments : (time,) int, optional
            Segment ids as in :meth:`fit`: each segment is embedded with its own edge
            padding, so no window mixes two segments. Without
            ``pad_before_transform`` each segment gives ``len - receptive field + 1``
            rows.
        """
        check_is_fitted(self, "solver_")
        if is_multisession(X):
            raise ValueError(f"transform embeds one recording at a time, got a list of "
                             f"{len(X)}: call transform(X[i], session_id=i) per session.")
        X = as_array(X, "X")
        trials = None
        if X.ndim == 3:
            if segments is not None:
                raise ValueError("segments was given with trial-structured X (trials, time, "
                                 "neurons), where each trial is one segment; pass X as (time, "
                                 "neurons) to give segment ids.")
            trials = X.shape[0]
            X, _, segments = flatten_trials(X, ())
        neural = check_neural(X)
        segments = check_segments(segments, len(neural),
                                  "segments" if trials is None else "X (trials)")
        session = self.check_session_id(session_id)
        expected = self.n_features_in_ if session is None else self.n_features_in_[session]
        if neural.shape[1] != expected:
            raise ValueError(f"X has {neural.shape[1]} features, but CEBRA is expecting "
                             f"{expected} features as input (neurons"
                             f"{'' if session_id is None else f' of session {session_id}'}; "
                             f"X has shape {neural.shape}).")
        if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        bounds = [(0, len(neural))] if segments is None else segment_bounds(segments)
        if not self.pad_before_transform and segments is not None:
            short = sum(stop - start < len(self.offset_) for start, stop in bounds)
            if short:
                raise ValueError(f"{'segments' if trials is None else 'X (trials)'}: {short} "
                                 f"segment(s) are shorter than the model's receptive field of "
                                 f"{len(self.offset_)} samples and cannot be embedded without "
                                 "padding; use pad_before_transform=True.")
        recording = torch.from_numpy(neural)
        parts = [self.solver_.transform(recording[start:stop], session_id=session_id,
                                        batch_size=batch_size,
                                        pad_before_transform=self.pad_before_transform).cpu()
                 for start, stop in bounds]
        embedding = (parts[0] if len(parts) == 1 else torch.cat(parts)).numpy()
        return embedding if trials is None else embedding.reshape(trials, -1,
                                                                   embedding.shape[1])

    def fit_transform(self, X, *y, **fit_params) -> np.ndarray:
        """``fit(X, *y)`` then ``transform(X)``; ``y=`` (scikit-learn style) adds a label."""
        if "y" in fit_params:
            y = (*y, fit_params.pop("y"))
        return self.fit(X, *y, **fit_params).transform(X, segments=fit_params.get("segments"))

    def to(self, device: str) -> "CEBRA":
        """Move the fitted model to ``device``."""
        self.device = device
        if hasattr(self, "solver_"):
            self.device_ = str(self.resolved_device())
            self.solver_.to(self.device_)
        return self

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike, backend: str = "sklearn") -> None:
        """Write the estimator to one ``.pt`` file of tensors and JSON strings.

        The file holds the parameters, the fitted state (weights, optimiser, loss
        history and log) and the library versions; :meth:`load` restores it without
        unpickling any object. ``backend`` (``"sklearn"`` or ``"torch"``, the reference's
        names) is accepted for scripts written for the reference: both write this file,
        never a pickled object (``cebra_pipe.compat.save_for_cebra`` writes the
        reference's format).
        """
        if backend not in ("sklearn", "torch"):
            raise ValueError(f"save: backend must be 'sklearn' or 'torch', got {backend!r}.")
        model_file = persistence.ModelFile(params=self.get_params())
        if hasattr(self, "solver_"):
            model_file.fitted = {
                "n_features_in_": self.n_features_in_, "num_sessions_": self.num_sessions_,
                "label_kind_": self.label_kind_, "label_dims_": self.label_dims_,
                "offset_": [self.offset_.left, self.offset_.right],
                "fit_calls": getattr(self, "_fit_calls", 0),
                "num_negatives_": getattr(self, "num_negatives_", None)}
            model_file.state = self.solver_.state_dict()
            if getattr(self, "cohort_anchors_", None) is not None:
                model_file.extra["cohort"] = self.cohort_anchors_.state_dict()
        persistence.write_model(path, model_file)  # same estimator, same bytes

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = "auto",
             weights_only: bool | None = None, map_location: str | None = None) -> "CEBRA":
        """Load an estimator written by :meth:`save` or by the reference ``cebra`` 0.6.1;
        files carrying pickled objects are refused before anything in them runs.

        ``backend`` and ``weights_only`` are the reference's arguments: the format is
        detected from the file whatever ``backend`` says, and ``weights_only=False``
        (unpickle anything) is refused.
        """
        if backend not in ("auto", "sklearn", "torch"):
            raise ValueError(f"load: backend must be 'auto', 'sklearn' or 'torch', got "
                             f"{backend!r}.")
        if weights_only is False:
            raise ValueError("load: weights_only=False (unpickling arbitrary objects) is not "
                             "supported; cebra_pipe reads model files, the reference's "
                             "included, without running pickled code. Leave it out.")
        path = Path(path)
        model_file = persistence.read_model(path, set(cls().get_params()))
        estimator = cls(**model_file.params)
        if map_location is not None:
            estimator.device = map_location
        try:
            estimator.validate_params()
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"Refusing to load {path}: field 'meta.params' holds invalid "
                             f"parameters: {err}") from None
        if model_file.fitted is not None:
            try:
                estimator._restore(model_file.fitted, model_file.state)
            except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
                detail = " ".join(line.strip() for line in str(err).splitlines()[:3])[:400] \
                    or type(err).__name__
                raise ValueError(f"Refusing to load {path}: field 'state' does not match the "
                                 f"architecture its fields 'meta.params' and 'fitted' describe "
                                 f"({type(err).__name__}: {detail}).") from None
            if "cohort" in model_file.extra:
                estimator.cohort_anchors_ = adaptation.CohortAnchors.from_state_dict(
                    model_file.extra["cohort"], f"Refusing to load {path}")
        return estimator

    def _restore(self, fitted: dict, state: dict) -> None:
        multi = fitted["num_sessions_"] is not None
        dims = fitted["n_features_in_"] if multi else [fitted["n_features_in_"]]
        # Placeholder labels: _build only checks that hybrid models have continuous ones.
        labels = np.zeros((1, fitted["label_dims_"] or 1), np.float32)
        self._build([SessionData(neural=np.zeros((1, d), np.float32), continuous=labels)
                     for d in dims], multi)
        self.label_kind_, self.label_dims_ = fitted["label_kind_"], fitted["label_dims_"]
        self.offset_ = Offset(*fitted["offset_"])
        self._fit_calls = fitted["fit_calls"]
        self.num_negatives_ = fitted.get("num_negatives_")
        self.solver_.load_state_dict(state)
        self.solver_.to(self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None
        return tags


def _negatives_per_step(loader) -> int:
    """Negatives each reference is contrasted with (sets the chance-level loss)."""
    sessions = getattr(loader.dataset, "num_sessions", 1)
    if loader.batch_size is not None:
        return loader.batch_size * sessions
    return len(loader.sampler.all_references())


@contextlib.contextmanager
def _only_trainable(model: torch.nn.Module, criterion: torch.nn.Module, trainable):
    """Freeze every parameter of ``model`` and ``criterion`` except ``trainable`` inside
    the block; afterwards every one trains again (as ``partial_fit`` expects)."""
    trainable = {id(p) for p in trainable}
    everything = list(model.parameters()) + list(criterion.parameters())
    for parameter in everything:
        parameter.requires_grad_(id(parameter) in trainable)
    try:
        yield
    finally:
        for parameter in everything:
            parameter.requires_grad_(True)


def _check_finite_positive(name: str, value, allow_none: bool = False) -> None:
    """``value`` must be a finite real number > 0 (or None when ``allow_none``)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0"
                         f"{' or None' if allow_none else ''}, got {value!r}.")
