"""Adding recordings to a trained model (``CEBRA.fit(..., adapt=True)``).

Single-session models get fresh input layers for the new neuron count (the layers
whose shape depends on it, :func:`input_parameters`) and only those are trained.
Multi-session models (one encoder per session) grow: each new session gets the
weights of the cohort's template encoder (the encoder of session 0, the first
session trained jointly) with fresh input layers, and only those are trained with
the multi-session InfoNCE against the *frozen* cohort.

The cohort is represented by its :class:`CohortAnchors`: each cohort session's
embedding of its training data and the labels of those samples, recorded at the end
of a multi-session fit. Because the cohort encoders are frozen, their embeddings are
constants, so adapting needs neither the cohort's recordings nor its encoders: each
anchor session enters training as a dataset of embedding rows encoded by
:class:`AnchorEncoder` (the identity with a one-sample receptive field). Positives
are then matched by label across sessions exactly as in multi-session training
(same sampler, same loss, same shared negatives).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cebra_pipe.data.datatypes import Offset
from cebra_pipe.sklearn.inputs import SessionData
from cebra_pipe.sklearn.metrics import consistency_score

#: The cohort session whose encoder a new session's encoder copies (all but its input
#: layers): the first session trained jointly, so the choice is deterministic.
TEMPLATE_SESSION = 0


class AdaptError(ValueError):
    """``fit(adapt=True)`` cannot add these recordings to this model."""


class MissingSessionIdError(AdaptError, NotImplementedError):
    """``fit(adapt=True)`` on a multi-session model without ``session_id``: a ValueError,
    and the NotImplementedError the reference raises for any multi-session adapt."""


def input_parameters(make_model: Callable[[int], nn.Module]) -> set[str]:
    """Names of the parameters (and buffers) of the layers whose shape depends on the
    neuron count: the model's input layers (with their biases).

    Found by building the architecture for two neuron counts (on the meta device: no
    memory, no random numbers drawn), so any layout works: a plain first convolution,
    one wrapped in a skip connection, or input channels that also reach a later layer
    (``MeanAndConv`` of the resampling models).
    """
    with torch.device("meta"):
        small, large = make_model(2).state_dict(), make_model(3).state_dict()
    layers = {name.rpartition(".")[0] for name, value in small.items()
              if value.shape != large[name].shape}
    return {name for name in small if name.rpartition(".")[0] in layers}


def adapted_encoder(template: nn.Module, make_model: Callable[[int], nn.Module],
                    num_neurons: int) -> tuple[nn.Module, list[nn.Parameter]]:
    """``template``'s architecture for ``num_neurons`` inputs: freshly initialised input
    layers (:func:`input_parameters`), ``template``'s weights everywhere else.

    Everything but the new input layers is frozen. Call inside a seeded block: the
    fresh weights come from torch's global RNG.

    Parameters
    ----------
    template
        A trained encoder built by ``make_model``.
    make_model
        ``make_model(num_neurons)`` builds an untrained encoder of the architecture.

    Returns
    -------
    encoder, and its trainable input-layer parameters
    """
    fresh = input_parameters(make_model)
    if not fresh:
        raise AdaptError(f"{type(template).__name__}: no layer of this architecture depends "
                         "on the number of neurons, so there is no input layer to adapt.")
    encoder = make_model(num_neurons)
    kept = {name: value for name, value in template.state_dict().items() if name not in fresh}
    missing, unexpected = encoder.load_state_dict(kept, strict=False)
    if set(missing) != fresh or unexpected:
        raise AdaptError(f"{type(template).__name__} does not match its architecture built "
                         f"for {num_neurons} neurons (missing {sorted(set(missing) - fresh)}, "
                         f"unexpected {sorted(unexpected)}).")
    device = next(iter(template.parameters())).device
    encoder.to(device)
    trainable = [p for name, p in encoder.named_parameters() if name in fresh]
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    for parameter in trainable:
        parameter.requires_grad_(True)
    return encoder, trainable


class AnchorEncoder(nn.Module):
    """Stands in for a frozen cohort encoder during adaptation.

    Its dataset holds the encoder's embedding ``(time, dims)`` in place of neural
    data, so a window of one sample ``(batch, dims, 1)`` already is the embedding.
    """

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return windows[..., 0]

    def get_offset(self) -> Offset:
        return Offset(0, 1)


@dataclass
class CohortAnchors:
    """Each cohort session's embedding of its training data, with those samples' labels.

    Attributes
    ----------
    embeddings : per session (time_s, output_dimension) float32
    continuous : per session (time_s, dims) float32 or None
    discrete : per session (time_s,) int64 or None
    segments : per session (time_s,) int64 or None (seams, as in ``fit``)
    """

    embeddings: list[np.ndarray]
    continuous: list[np.ndarray | None] = field(default_factory=list)
    discrete: list[np.ndarray | None] = field(default_factory=list)
    segments: list[np.ndarray | None] = field(default_factory=list)

    @classmethod
    def from_sessions(cls, embeddings: Sequence[np.ndarray],
                      sessions: Sequence[SessionData]) -> "CohortAnchors":
        """Anchors from each session's embedding ``(time, dims)`` and its validated data."""
        return cls(embeddings=[np.asarray(e, np.float32) for e in embeddings],
                   continuous=[s.continuous for s in sessions],
                   discrete=[s.discrete for s in sessions],
                   segments=[s.segments for s in sessions])

    @property
    def num_sessions(self) -> int:
        return len(self.embeddings)

    def session(self, index: int) -> SessionData:
        """Session ``index`` as training data whose "neural" columns are its embedding."""
        return SessionData(neural=self.embeddings[index], continuous=self.continuous[index],
                           discrete=self.discrete[index], segments=self.segments[index])

    def replace(self, index: int, embedding: np.ndarray, session: SessionData) -> None:
        """Make ``session`` (embedded as ``embedding``) the anchor of cohort session ``index``."""
        self.embeddings[index] = np.asarray(embedding, np.float32)
        self.continuous[index] = session.continuous
        self.discrete[index] = session.discrete
        self.segments[index] = session.segments

    def state_dict(self) -> dict:
        """Plain tensors, for the model file (absent entries are left out)."""
        state: dict = {"num_sessions": torch.tensor(self.num_sessions)}
        for name in ("embeddings", "continuous", "discrete", "segments"):
            for i, array in enumerate(getattr(self, name)):
                if array is not None:
                    state[f"{name}.{i}"] = torch.from_numpy(np.ascontiguousarray(array))
        return state

    @classmethod
    def from_state_dict(cls, state: dict, source: str) -> "CohortAnchors":
        """Rebuild from :meth:`state_dict`; ``source`` (the file) names bad fields."""
        if not isinstance(state, dict) or not isinstance(state.get("num_sessions"),
                                                         torch.Tensor):
            raise ValueError(f"{source}: field 'cohort' is not a cohort anchor record.")
        count = int(state["num_sessions"])
        fields = {name: [None] * count
                  for name in ("embeddings", "continuous", "discrete", "segments")}
        for key, value in state.items():
            if key == "num_sessions":
                continue
            name, _, index = key.partition(".")
            if name not in fields or not index.isdigit() or int(index) >= count \
                    or not isinstance(value, torch.Tensor):
                raise ValueError(f"{source}: field 'cohort' has an unexpected entry {key!r}.")
            fields[name][int(index)] = value.numpy()
        for i, (embedding, continuous, discrete, segments) in enumerate(zip(*fields.values())):
            if embedding is None or embedding.ndim != 2 or not np.isfinite(embedding).all():
                raise ValueError(f"{source}: field 'cohort.embeddings.{i}' is missing, not "
                                 "2-D or not finite.")
            for name, array in (("continuous", continuous), ("discrete", discrete),
                                ("segments", segments)):
                if array is not None and len(array) != len(embedding):
                    raise ValueError(f"{source}: field 'cohort.{name}.{i}' has {len(array)} "
                                     f"rows for {len(embedding)} embedding rows.")
        return cls(**fields)


def check_adapt_ids(session_id, count: int, num_sessions: int) -> list[int]:
    """The session index of each of ``count`` new recordings of a multi-session adapt.

    ``session_id`` is an int (one recording) or a list of ints (one per recording);
    each must be an existing index (re-adapt that session) or the next free one, in
    order, so the model grows without gaps.
    """
    ids = session_id if isinstance(session_id, (list, tuple)) else [session_id]
    if session_id is None:
        raise MissingSessionIdError(
            f"fit(adapt=True) on a multi-session model (multisession adapt) needs "
            f"session_id: the index of the new session ({num_sessions} adds one to the "
            f"{num_sessions} sessions; 0..{num_sessions - 1} re-adapts one), or a list of "
            "indices for a list of recordings.")
    if len(ids) != count:
        raise AdaptError(f"fit(adapt=True): {count} recording(s) but session_id gives "
                         f"{len(ids)} index(es) ({session_id!r}); give one per recording.")
    free = num_sessions
    checked = []
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"session_id must be an integer session index, got {value!r}.")
        value = int(value)
        if value in checked:
            raise AdaptError(f"session_id {value} is given twice ({session_id!r}).")
        if value == free:
            free += 1
        elif not 0 <= value < num_sessions:
            raise AdaptError(f"session_id={value} is neither an existing session "
                             f"(0..{num_sessions - 1}) nor the next free index ({free}); new "
                             "sessions are numbered on from the model's sessions without gaps.")
        checked.append(value)
    return checked


def check_adapt_labels(sessions: Sequence[SessionData], label_kind: str,
                       label_dims: int | None, classes: np.ndarray | None = None) -> None:
    """The new recordings must carry the cohort's kind of labels (and dimensions)."""
    if label_kind == "time":
        raise AdaptError("fit(adapt=True) on a multi-session model needs a model trained "
                         "with labels: the new session is aligned to the cohort by matching "
                         "labels, and this model was trained without any.")
    for i, session in enumerate(sessions):
        if session.label_kind == "time":
            raise AdaptError(f"fit(adapt=True) on a multi-session model needs labels for "
                             f"recording {i} (the cohort's {label_kind} labels): the new "
                             "session is aligned to the cohort by matching labels.")
        if session.label_kind != label_kind:
            raise AdaptError(f"recording {i} has {session.label_kind} labels, but the cohort "
                             f"was trained with {label_kind} labels.")
        if session.continuous is not None and session.continuous.shape[1] != label_dims:
            raise AdaptError(f"recording {i} has {session.continuous.shape[1]} continuous "
                             f"label dimension(s), the cohort {label_dims}.")
        if classes is not None and session.discrete is not None:
            missing = sorted(set(np.unique(session.discrete).tolist())
                             ^ set(np.asarray(classes).tolist()))
            if missing:
                raise AdaptError(f"recording {i}'s discrete labels differ from the cohort's "
                                 f"classes {np.asarray(classes).tolist()} (classes in only one "
                                 f"of them: {missing}).")


def cohort_consistency(new_embedding: np.ndarray, labels: np.ndarray,
                       anchors: CohortAnchors, exclude: int | None = None,
                       label_column: int = 0, num_bins: int = 20) -> dict[int, float]:
    """How well a new session sits in the cohort's space.

    The consistency (R^2 of the best linear map, :func:`consistency_score` between
    datasets, aligned by ``num_bins`` bins of one label) from the new session's
    embedding to each cohort session's anchor embedding.

    Parameters
    ----------
    new_embedding : (time, dims)
    labels : (time,) or (time, label dims)
        The new session's labels; column ``label_column`` bins the samples (for
        discrete labels each class is a bin).
    anchors
        The cohort.
    exclude
        A cohort session left out (the new session's own index when re-adapting).

    Returns
    -------
    dict
        Cohort session index -> R^2 (1 = same space up to a linear map; chance ~0).
    """
    labels = np.asarray(labels)
    column = labels if labels.ndim == 1 else labels[:, label_column]
    result = {}
    for k in range(anchors.num_sessions):
        if k == exclude:
            continue
        cohort = anchors.continuous[k] if anchors.continuous[k] is not None \
            else anchors.discrete[k]
        cohort = cohort if cohort.ndim == 1 else cohort[:, label_column]
        bins = num_bins if anchors.continuous[k] is not None else len(np.unique(cohort))
        scores, pairs, _ = consistency_score([new_embedding, anchors.embeddings[k]],
                                             between="datasets",
                                             labels=[column.astype(np.float64),
                                                     cohort.astype(np.float64)],
                                             dataset_ids=["new session", f"cohort session {k}"],
                                             num_discretization_bins=bins)
        score = float(scores[pairs[:, 0] == "new session"][0])
        result[k] = score if math.isfinite(score) else float("nan")
    return result
